"""How long obs-tui runs as root: from the moment it is started to the moment its Uid in
/proc/PID/status is no longer 0 (interpreter start-up, imports, probe compile and attach, the
one /proc scan for listening sockets), for the console in a tmux pane and for `snapshot`.

    .venv/bin/python bench/root_time.py [--runs 5]

Polls every 5 ms. Baseline from the same run: the wall time of
starting Python and importing the console, the cli and bcc (what is left when no probe loads). Run as root (the drop is from root). tmux helpers are bench/ui_cost.py's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import ui_cost  # noqa: E402


def uid_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(line.split()[1] for line in f if line.startswith("Uid:"))
    except OSError:
        return None


def root_seconds(pid: int, t0: float, timeout: float = 60.0) -> float | None:
    while time.monotonic() - t0 < timeout:
        if uid_of(pid) not in ("0", None):
            return time.monotonic() - t0
        time.sleep(0.005)
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--obs-tui", default=str(REPO / ".venv" / "bin" / "obs-tui"))
    args = p.parse_args(argv)
    results: dict[str, list[float]] = {"console": [], "snapshot": [], "baseline": []}
    # a placeholder session keeps the tmux server up between the console's sessions
    ui_cost.tmux("new-session", "-d", "-s", "keep", "-x", "20", "-y", "5", "--", "sleep", "infinity")
    try:
        for _ in range(args.runs):
            t0 = time.monotonic()
            pid = ui_cost.start_pane("root_time", [args.obs_tui], {"TERM": "tmux-256color"}, 120, 40)
            results["console"].append(root_seconds(pid, t0))
            ui_cost.kill_session("root_time", [pid])
            t0 = time.monotonic()
            proc = subprocess.Popen(
                [args.obs_tui, "snapshot", "--json", "--duration", "1"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            results["snapshot"].append(root_seconds(proc.pid, t0))
            proc.wait()
            # baseline: interpreter start-up and the console's imports alone (no probe, no drop)
            t0 = time.monotonic()
            python = str(Path(args.obs_tui).with_name("python"))
            subprocess.run([python, "-c", "import obs_tui.tui.app, obs_tui.cli, bcc"], check=True)
            results["baseline"].append(time.monotonic() - t0)
    finally:
        ui_cost.tmux_kill_server()
    print(f"# seconds as root from start to the privilege drop, {args.runs} runs, git {ui_cost.git_state()}")
    for name, values in results.items():
        got = [v for v in values if v is not None]
        print(
            f"{name:9s} median {statistics.median(got):.2f} s  min {min(got):.2f}  max {max(got):.2f}  "
            f"(never dropped: {len(values) - len(got)})"
            if name != "baseline"
            else f"{name:9s} median {statistics.median(got):.2f} s  min {min(got):.2f}  max {max(got):.2f}  "
            "(start-up and imports alone: python -c 'import obs_tui.tui.app, obs_tui.cli, bcc')"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
