"""What works on this host and why not: one Check per requirement, each with a fix hint.

The same checks decide the Frame's capabilities ebpf and rapl, so the console's badges,
`snapshot --json` and `obs-tui doctor` can never disagree. Prometheus's capability in a running
engine is the health of the client its readers share (every request's outcome); doctor asks
through the same client and words a failure with the same health.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from obs_tui import bcc_setup
from obs_tui.config import Config
from obs_tui.model import Capability

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
BTF = Path("/sys/kernel/btf/vmlinux")


@dataclass(frozen=True)
class Check:
    name: str
    group: str  # the capability it feeds: "ebpf", "rapl", "prometheus", "terminal"
    ok: bool
    detail: str
    fix: str = ""

    @property
    def reason(self) -> str:
        """What failed and how to fix it, on one line (for badges and pane notices)."""
        return f"{self.detail}; {self.fix}".rstrip("; ")


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_privileges() -> Check:
    if os.geteuid() == 0:
        return Check("privileges", "ebpf", True, "running as root")
    caps = _effective_caps()
    has = lambda bit: bool(caps >> bit & 1)  # noqa: E731
    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return Check("privileges", "ebpf", True, "CAP_BPF and CAP_PERFMON granted")
    return Check(
        "privileges",
        "ebpf",
        False,
        "not root and no CAP_BPF+CAP_PERFMON",
        "run as root: sudo obs-tui (or obs-tui --read-only for Prometheus only)",
    )


def check_btf() -> Check:
    if BTF.is_file():
        return Check("btf", "ebpf", True, str(BTF))
    return Check("btf", "ebpf", False, f"{BTF} missing", "use a kernel built with CONFIG_DEBUG_INFO_BTF=y")


def check_tracefs() -> Check:
    if bcc_setup.tracefs_mounted():
        return Check("tracefs", "ebpf", True, "mounted")
    bcc_setup.ensure_tracefs()
    if bcc_setup.tracefs_mounted():
        return Check("tracefs", "ebpf", True, f"was not mounted; obs-tui mounted it at {bcc_setup.TRACEFS}")
    return Check(
        "tracefs",
        "ebpf",
        False,
        "tracefs not mounted",
        "mount -t tracefs tracefs /sys/kernel/tracing (obs-tui does this itself as root)",
    )


def check_headers() -> Check:
    own = bcc_setup.running_kernel_headers()
    if own is not None:
        return Check("kernel headers", "ebpf", True, str(own))
    pairs = bcc_setup.distro_header_pairs()
    if pairs:
        return Check(
            "kernel headers",
            "ebpf",
            True,
            f"none packaged for {os.uname().release}; using {pairs[0][1].name}, "
            f"assembled into {bcc_setup.cache_dir() / 'kernel-headers'}",
        )
    return Check(
        "kernel headers",
        "ebpf",
        False,
        f"none for {os.uname().release} and no fallback",
        "apt install linux-headers-amd64",
    )


def check_bcc() -> Check:
    try:
        import bcc
    except ImportError as exc:
        return Check("bcc", "ebpf", False, f"not importable: {exc}", "apt install python3-bpfcc")
    return Check("bcc", "ebpf", True, f"bcc from {Path(bcc.__file__).parent}")


def check_rapl(powercap_root: str, hwmon_root: str = "/sys/class/hwmon") -> Check:
    """The power source's own reader: zones found and every counter opened and read."""
    from obs_tui.sources.rapl import open_meter

    meter, detail = open_meter(powercap_root, hwmon_root)
    if meter is not None:
        meter.close()
        return Check("rapl", "rapl", True, f"{meter.kind}: {detail}")
    if "EACCES" in detail or "permission" in detail:
        return Check("rapl", "rapl", False, detail, "run as root: energy_uj is root-only since CVE-2020-8694")
    return Check(
        "rapl",
        "rapl",
        False,
        detail,
        "bare metal with Intel/AMD RAPL and the intel_rapl_common module; "
        "otherwise power is estimated per vCPU",
    )


def check_prometheus(prom: dict, probe: bool = True) -> Check:
    """Settings, then (with probe) one buildinfo call through the same client the console
    uses, its failure worded by the same health (sources/service_health.py). The console does
    not probe: the requests of its readers are its health, so the first frame never waits."""
    if not prom.get("url"):
        return Check(
            "prometheus",
            "prometheus",
            False,
            "not configured",
            "--prometheus URL or [prometheus] url in the config",
        )
    from obs_tui.sources.prometheus import Client, PrometheusConfigError, PrometheusError

    try:
        client = Client.from_config(prom)
    except PrometheusConfigError as exc:
        return Check("prometheus", "prometheus", False, str(exc), "fix the [prometheus] table")
    if not probe:
        client.close()
        return Check("prometheus", "prometheus", True, f"{prom['url']} configured (not probed yet)")
    try:
        version = client.buildinfo()["version"]
    except PrometheusError as exc:
        health = client.health.capability()
        detail = str(exc) if health.ok else f"{prom['url']}: {health.reason}"
        return Check(
            "prometheus", "prometheus", False, detail, "check the URL, the network, and the auth settings"
        )
    finally:
        client.close()
    return Check("prometheus", "prometheus", True, f"{prom['url']} Prometheus {version}")


def check_terminal() -> Check:
    size = shutil.get_terminal_size(fallback=(0, 0))
    if "NO_COLOR" in os.environ:
        colours = "no colour (NO_COLOR set)"
    elif os.environ.get("TERM") == "dumb":
        colours = "no colour (TERM=dumb)"
    elif os.environ.get("COLORTERM") in ("truecolor", "24bit"):
        colours = "truecolor"
    elif "256" in os.environ.get("TERM", ""):
        colours = "256 colours"
    else:
        colours = f"16 colours (TERM={os.environ.get('TERM', 'unset')})"
    detail = f"{size.columns}x{size.lines}, {colours}" if size.columns else f"not a terminal, {colours}"
    if size.columns and (size.columns < 80 or size.lines < 24):
        return Check("terminal", "terminal", False, detail, "enlarge the terminal to at least 80x24")
    return Check("terminal", "terminal", True, detail)


def check_probe_compile() -> Check:
    """Compile and load a one-line tracepoint program: the proof that the checks above add up."""
    try:
        bcc = bcc_setup.import_bcc(notice=lambda line: None)
        probe = bcc.BPF(text=b"TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }")
        probe.cleanup()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Check(
            "probe compile",
            "ebpf",
            False,
            f"a test probe failed to load: {first}",
            "see the failed checks above; BCC_KERNEL_SOURCE may point at the wrong headers",
        )
    return Check("probe compile", "ebpf", True, "a tracepoint probe compiled, loaded and detached")


def ebpf_checks(compile_probe: bool = True) -> list[Check]:
    checks = [check_privileges(), check_btf(), check_tracefs(), check_headers(), check_bcc()]
    if compile_probe and all(c.ok for c in checks):
        checks.append(check_probe_compile())
    return checks


def run_checks(
    config: Config, read_only: bool = False, compile_probe: bool = True, probe_prometheus: bool = True
) -> list[Check]:
    """All checks. The console passes compile_probe=False (its RED source compiles the real
    probes) and probe_prometheus=False (its SLO worker asks Prometheus, off the first frame)."""
    checks = [] if read_only else ebpf_checks(compile_probe)
    if not read_only:  # read-only mode touches no probe and no RAPL counter
        checks.append(check_rapl(config.power["powercap_root"], config.power["hwmon_root"]))
    checks.append(check_prometheus(config.prometheus, probe_prometheus))
    checks.append(check_terminal())
    return checks


def capabilities(checks: list[Check], read_only: bool = False) -> dict[str, Capability]:
    """One Capability per data-source group: ok when all its checks pass, else the first reason."""
    out: dict[str, Capability] = {}
    for group in ("ebpf", "rapl", "prometheus"):
        failed = [c for c in checks if c.group == group and not c.ok]
        if group == "ebpf" and read_only:
            out[group] = Capability(False, "read-only mode: no probes")
        elif group == "rapl" and read_only:
            out[group] = Capability(False, "read-only mode: power from Prometheus, not RAPL")
        elif failed:
            out[group] = Capability(False, failed[0].reason)
        else:
            out[group] = Capability(True)
    return out


def as_json(checks: list[Check]) -> dict:
    return {
        "checks": [asdict(c) for c in checks],
        "capabilities": {k: asdict(v) for k, v in capabilities(checks).items()},
    }


def render_text(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else "FAIL"
        lines.append(f"{mark}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)
