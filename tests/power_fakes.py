"""What power tests need that this machine lacks, and real CPU burners.

FakeRapl writes a powercap (or amd_energy hwmon) tree in a directory and a thread advances
every energy counter at a known wattage, wrapping at max_energy_range_uj as the hardware
does. Values are written in place (pwrite at offset 0, fixed width) so the reader's held
descriptors see them, as they would see sysfs.

Burners are real processes that use a set share of one core, paced on their own CPU time.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

WIDTH = 20  # digits: a fixed width so an in-place rewrite never leaves a longer old tail


@dataclass
class FakeZone:
    dirname: str  # intel-rapl:0, intel-rapl:0:1, or hwmon0/energy1 for amd_energy
    name: str  # package-0, core, dram, psys; Esocket0 for amd_energy
    watts: float
    max_uj: int = 262_143_328_850
    start_uj: int = 1_000_000


class FakeRapl:
    def __init__(
        self, root: Path, zones: list[FakeZone], hwmon: bool = False, period_s: float = 0.001
    ) -> None:
        self.root = Path(root)
        self.zones = zones
        self.period_s = period_s
        self._fds: list[int] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._thread: threading.Thread | None = None
        for z in zones:
            if hwmon:
                hw, counter = z.dirname.split("/")
                d = self.root / hw
                d.mkdir(parents=True, exist_ok=True)
                (d / "name").write_text("amd_energy\n")
                (d / f"{counter}_label").write_text(z.name + "\n")
                path = d / f"{counter}_input"
            else:
                d = self.root / z.dirname
                d.mkdir(parents=True, exist_ok=True)
                (d / "name").write_text(z.name + "\n")
                (d / "max_energy_range_uj").write_text(f"{z.max_uj}\n")
                path = d / "energy_uj"
            path.write_text(f"{z.start_uj:0{WIDTH}d}\n")
            path.chmod(0o400)  # as the kernel has it since 5.10
            self._fds.append(os.open(path, os.O_WRONLY))

    def value(self, zone: FakeZone, elapsed: float) -> int:
        return (zone.start_uj + round(zone.watts * elapsed * 1e6)) % (zone.max_uj + 1)

    def _write(self) -> float:
        now = time.monotonic()
        for fd, z in zip(self._fds, self.zones):
            os.pwrite(fd, f"{self.value(z, now - self._t0):0{WIDTH}d}\n".encode(), 0)
        return now

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._write()
            time.sleep(self.period_s)

    @contextlib.contextmanager
    def held(self):
        """Writes the counters for now, holds the writer while the body reads them, and yields
        that now: the time a reader's sample stands for. Without it, a writer thread starved by
        a busy machine (or by the GIL during the reader's /proc sweep) makes the counters
        older than the reader's clock by tens of ms, i.e. several % of a 1.5 s window."""
        with self._lock:
            yield self._write()

    def __enter__(self) -> FakeRapl:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for fd in self._fds:
            os.close(fd)


BURNER = r"""
import os, sys, time
share, period = float(sys.argv[1]), 0.02
t0, c0 = time.monotonic(), time.thread_time()
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    # Burn until this process's CPU time reaches `share` of the wall time since start, then
    # sleep: paced on CPU time, so a busy machine slows the pace, not the ratio.
    target = share * (time.monotonic() - t0)
    while time.thread_time() - c0 < target:
        pass
    time.sleep(period * (1 - share))
"""


def _favoured() -> None:
    # With autogroup scheduling a nice value only counts inside its session, and the other
    # helpers' sessions compete with ours: give the burner a session of its own and nice that
    # session up (we run as root), so other work on this 2-core machine cannot starve it
    # below its share and skew the ratio the tests check.
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write("-10")
    except OSError:
        pass  # no autogroup: the plain nice below is what counts
    os.setpriority(os.PRIO_PROCESS, 0, -10)


def spawn_burner(share: float) -> subprocess.Popen:
    """A real process using `share` of one core, paced on its own CPU time."""
    proc = subprocess.Popen(
        [sys.executable, "-c", BURNER, str(share)], stdout=subprocess.PIPE, preexec_fn=_favoured
    )
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()
