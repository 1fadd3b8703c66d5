"""Cost of one power sample with 500 extra real processes alive, beside a baseline measured in
the same run, and the cost the sched_switch probe adds to every context switch.

    sudo .venv/bin/python bench/power_cost.py [--procs 500] [--samples 40] [--switches 50000]

One power sample = read the RAPL counters (a fake powercap tree: this machine has none; the
reads go through the real reader's held descriptors), read /proc/stat, read on-CPU time per
process (eBPF map, or the /proc fallback), and run the attribution and the totals since start.
The baseline is the procs source's sweep of /proc/PID/stat alone, which every tick pays anyway.
CPU time is this process's own (time.process_time), median over the samples.

The probe's cost: a pipe ping-pong between two processes (two context switches per round
trip, on whichever CPUs), timed with the probe loaded and not, alternating, medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from obs_tui.analysis.attribution import carry_totals, power_section
from obs_tui.sources import power
from obs_tui.sources.cputime import EbpfCpuTime
from obs_tui.sources.power import PowerSource
from obs_tui.sources.procs import ProcsSource
from tests.power_fakes import FakeRapl, FakeZone

ZONES = [
    FakeZone("intel-rapl:0", "package-0", 60.0),
    FakeZone("intel-rapl:0:0", "core", 40.0),
    FakeZone("intel-rapl:0:1", "dram", 8.0),
    FakeZone("intel-rapl:1", "package-1", 55.0),
    FakeZone("intel-rapl:1:0", "core", 35.0),
    FakeZone("intel-rapl:1:1", "dram", 7.0),
]


def cpu_ms(fn, samples: int, gap_s: float = 0.05) -> float:
    """Median CPU milliseconds of fn() (this process's), with a pause between calls so the
    processes move as between real ticks."""
    costs = []
    for _ in range(samples):
        c0 = time.process_time()
        fn()
        costs.append((time.process_time() - c0) * 1000)
        time.sleep(gap_s)
    return statistics.median(costs)


def power_tick(source: PowerSource):
    # The cost measured is a reading's: take one on every call, not once a second as the
    # console does (sources/power.py, ENERGY_WINDOW_S).
    power.ENERGY_WINDOW_S = power.WINDOW_SLACK_S = 0.0
    state = {"prev": source.sample(0.0), "section": None}

    def tick():
        cur = source.sample(0.0)
        state["section"] = carry_totals(state["section"], power_section(state["prev"], cur, 1.0))
        state["prev"] = cur

    return tick, state


PINGPONG = r"""
import os, sys, time
n = int(sys.argv[1])
a_r, a_w = os.pipe(); b_r, b_w = os.pipe()
if os.fork() == 0:
    for _ in range(n):
        os.read(a_r, 1); os.write(b_w, b"x")
    os._exit(0)
t0 = time.perf_counter()
for _ in range(n):
    os.write(a_w, b"x"); os.read(b_r, 1)
print((time.perf_counter() - t0) / n * 1e6)
os.wait()
"""


def pingpong_us(n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PINGPONG, str(n)], capture_output=True, text=True, check=True
    ).stdout
    return float(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=500)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--switches", type=int, default=50000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        FakeRapl(Path(tmp), ZONES)  # static counters: a writer thread would bill us its CPU
        sources = [PowerSource(tmp, tmp, use_ebpf=True), PowerSource(tmp, tmp, use_ebpf=False)]
        for source in sources:
            assert source.available().ok, source.reason
        # Spawned after the probe is loaded: each ran at least once (exec), so each has its
        # entry in the map, as every process that ran has in a console that has been up a while.
        sleepers = [subprocess.Popen(["sleep", "3600"], stdout=subprocess.DEVNULL) for _ in range(args.procs)]
        try:
            time.sleep(1.0)
            alive = sum(1 for n in os.listdir("/proc") if n.isdigit())
            procs = ProcsSource()
            procs.sample(0.0)
            base = cpu_ms(lambda: procs.sample(0.0), args.samples)
            results = {}
            for source in sources:
                tick, state = power_tick(source)
                results[source.cputime.kind] = (cpu_ms(tick, args.samples), len(state["prev"].cpu_ns))
                source.close()
        finally:
            for p in sleepers:
                p.kill()
            for p in sleepers:
                p.wait()
    print(f"processes alive: {alive} ({args.procs} spawned sleepers)")
    print(f"baseline  procs sweep (/proc/PID/stat)        {base:6.2f} ms CPU per tick")
    for kind, (ms, tgids) in results.items():
        label = "eBPF map" if kind == "ebpf" else "/proc fallback"
        print(
            f"power     RAPL + /proc/stat + {label:<15}+ attribution  {ms:6.2f} ms CPU per tick"
            f"  ({ms / base:.2f}x the sweep; {tgids} tgids attributed)"
        )

    # The probe's cost per context switch.
    pingpong_us(args.switches // 10)  # warm up
    without, with_probe = [], []
    probe = EbpfCpuTime()
    for r in range(args.rounds):
        for loaded in (False, True) if r % 2 == 0 else (True, False):
            if loaded:
                assert probe.open().ok
                with_probe.append(pingpong_us(args.switches))
                probe.close()
            else:
                without.append(pingpong_us(args.switches))
    a, b = statistics.median(without), statistics.median(with_probe)
    print(
        f"pipe round trip (2 context switches): {a:.2f} us without the probe, {b:.2f} us with "
        f"({(b - a) / 2 * 1000:+.0f} ns per switch, {100 * (b / a - 1):+.1f} %), "
        f"medians of {args.rounds} runs of {args.switches}"
    )


if __name__ == "__main__":
    main()
