#!/usr/bin/env python3
"""Cost of the carbon join per engine tick (issue 5): CarbonJoin over a power section of --procs
processes and a RED section of --services services, against a baseline measured in the same run:
building those two input sections (the same number of frozen dataclasses the join itself makes),
so the figure reads against plain object construction on this machine.

Run from the repo root:  .venv/bin/python bench/carbon_join.py [--procs 375] [--services 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from obs_tui.analysis.carbon import CarbonJoin, settings_from_config
from obs_tui.model import PowerSection, ProcessPower, RedSection, ServiceStats


def sections(procs: int, services: int) -> dict:
    pp = tuple(ProcessPower(pid, f"p{pid}", 1.0, 0.01 * (pid % 50), 3.6 * pid) for pid in range(1, procs + 1))
    power = PowerSection("estimate", 40.0, 10.0, (("cpu", 35.0), ("memory", 5.0)), pp, host_joules=1e6)
    red = RedSection(
        0,
        tuple(
            ServiceStats(pid, f"p{pid}", (8000 + pid,), 100, 0, 100.0, 0.0, 1.0, 2.0, 3.0)
            for pid in range(1, services + 1)
        ),
    )
    return {"power": power, "red": red}


def per_call_us(fn, seconds: float = 1.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=375)
    ap.add_argument("--services", type=int, default=10)
    args = ap.parse_args()
    s = sections(args.procs, args.services)
    join = CarbonJoin(settings_from_config({"region": "aws:eu-west-1"}))
    baseline = per_call_us(lambda: sections(args.procs, args.services))
    cost = per_call_us(lambda: join(s, 1.0))
    print(f"# {args.procs} processes, {args.services} services; per tick, same run")
    print(f"baseline: build the power+red sections   {baseline:8.1f} us")
    print(
        f"carbon join (section + per-request)      {cost:8.1f} us   ({cost / baseline:.2f}x baseline, "
        f"{cost / 1e4:.3f} % of one core at 1 Hz)"
    )


if __name__ == "__main__":
    main()
