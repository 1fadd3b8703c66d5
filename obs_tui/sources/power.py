"""Power: host energy (RAPL, or CCF's estimate where there is none), node CPU busy time and
on-CPU time per process, read together each tick for the attribution in
obs_tui/analysis/attribution.py.

Choosing at start-up, each choice with its reason kept for the pane and `snapshot`:
  energy:   powercap RAPL, else amd_energy hwmon, else the estimate (mode "estimate")
  CPU time: eBPF sched_switch, else /proc/PID/stat
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from obs_tui.ccf import host_estimate, load_table, parse_cpuinfo
from obs_tui.model import Capability, PowerEstimate
from obs_tui.raw import CpuStat, PowerRaw
from obs_tui.sources.base import SourceError
from obs_tui.sources.cputime import EbpfCpuTime, ProcCpuTime
from obs_tui.sources.rapl import CounterSet, open_meter

# Energy is read at most once per ENERGY_WINDOW_S, whatever the refresh interval: fine-grained
# energy readings leak secrets (Platypus, CVE-2020-8694), and every surface (console, snapshot,
# exporter) shows what this source reads. A reading is due once the window less the slack has
# passed, so a refresh of exactly 1 s is not halved by a few ms of timer jitter.
ENERGY_WINDOW_S = 1.0
WINDOW_SLACK_S = 0.05


def parse_proc_stat(text: str) -> CpuStat:
    """The aggregate cpu line: busy = user+nice+system+irq+softirq+steal (guest time is
    already inside user), total = busy + idle + iowait."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = [int(v) for v in line.split()[1:]]
            f += [0] * (8 - len(f))
            user, nice, system, idle, iowait, irq, softirq, steal = f[:8]
            busy = user + nice + system + irq + softirq + steal
            return CpuStat(busy, busy + idle + iowait)
    raise ValueError("no aggregate cpu line in /proc/stat")


def memory_gb(meminfo: str) -> float:
    """MemTotal in GiB (what cloud instance types call GB)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


class PowerSource:
    name = "power"
    mode = "live"

    def __init__(
        self,
        powercap_root: str = "/sys/class/powercap",
        hwmon_root: str = "/sys/class/hwmon",
        overrides: dict | None = None,
        use_ebpf: bool = True,
        proc_root: str = "/proc",
        notice=lambda line: None,
    ) -> None:
        self.powercap_root = powercap_root
        self.hwmon_root = hwmon_root
        self.overrides = dict(overrides or {})
        self.use_ebpf = use_ebpf
        self.proc_root = Path(proc_root)
        self.notice = notice
        self.meter: CounterSet | None = None
        self.estimate: PowerEstimate | None = None
        self.cputime: EbpfCpuTime | ProcCpuTime | None = None
        self.reason = ""
        self._capability: Capability | None = None
        self._stat_fd: int | None = None
        self._last: PowerRaw | None = None

    def available(self) -> Capability:
        if self._capability is None:
            self._capability = self._open()
        return self._capability

    def _open(self) -> Capability:
        reasons = []
        self.meter, why = open_meter(self.powercap_root, self.hwmon_root)
        if self.meter is None:
            try:
                cpu = parse_cpuinfo((self.proc_root / "cpuinfo").read_text())
                mem = memory_gb((self.proc_root / "meminfo").read_text())
            except OSError as exc:
                return Capability(False, f"no RAPL ({why}) and cannot read {exc.filename}")
            self.estimate = host_estimate(cpu, mem, self.overrides, load_table())
            self.mode = "estimate"
            reasons.append(f"estimate: {why}")
        cputime: EbpfCpuTime | ProcCpuTime | None = EbpfCpuTime(notice=self.notice) if self.use_ebpf else None
        cap = cputime.open() if cputime is not None else Capability(False, "eBPF off")
        if not cap.ok:
            if cputime is not None:
                cputime.close()
            cputime = ProcCpuTime(str(self.proc_root))
            reasons.append(f"CPU time from /proc: {cap.reason}")
            cap = cputime.open()
            if not cap.ok:
                return Capability(False, cap.reason)
        self.cputime = cputime
        self.reason = "; ".join(reasons)
        return Capability(True, self.reason)

    def sample(self, now: float) -> PowerRaw:
        """A new reading, or the last one itself while it is younger than the energy window:
        the only place energy (and the CPU time it is split by) is read."""
        cap = self.available()
        if not cap.ok or self.cputime is None:
            raise SourceError(cap.reason)
        at = time.monotonic()
        last = self._last
        if last is not None and at - last.at < ENERGY_WINDOW_S - WINDOW_SLACK_S:
            return last
        counters = self.meter.read() if self.meter is not None else ()
        with open(self.proc_root / "stat") as f:
            stat = parse_proc_stat(f.read())
        cpu_ns, comms = self.cputime.read()
        raw = PowerRaw(
            source="rapl" if self.meter is not None else "estimate",
            zones=self.meter.zones if self.meter is not None else (),
            counters=counters,
            stat=stat,
            cpu_ns=cpu_ns,
            comms=comms,
            cpu_time_source=self.cputime.kind,
            estimate=self.estimate,
            reason=self.reason,
            cpus=os.cpu_count() or 0,
            at=at,
        )
        self._last = raw
        return raw

    def close(self) -> None:
        if self.meter is not None:
            self.meter.close()
        if self.cputime is not None:
            self.cputime.close()
        self._capability = Capability(False, "closed")
