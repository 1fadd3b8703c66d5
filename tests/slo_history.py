"""Known history for the SLO tests: counters with chosen error ratios, written as TSDB blocks by
`promtool tsdb create-blocks-from openmetrics`, and the answers computed independently.

Time runs on a 5-minute grid ending at END (a whole hour in the past). Each scenario gives the
requests and errors of every 5-minute step; the counters are their running sums. The expected
error ratio over a window w at END is then (E[END] - E[END-w]) / (N[END] - N[END-w]), which is
what rate() computes when the window's edges fall on samples (no extrapolation).

Only the first sample, the one 30 days before END and the last 3 days and 2 hours are written: every window edge falls on
one of them, and promtool writes one 2-hour block per stretch with data (a month of dense
samples would be 370 blocks and a slow Prometheus start).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STEP = 300
DAYS = 31  # the 30 d period plus a day
END = (int(time.time()) // 3600 - 2) * 3600
START = END - DAYS * 86400
STEPS = (END - START) // STEP  # samples at START + k * STEP for k = 0..STEPS
REQUESTS = 10_000  # per 5-minute step

# step index k (1..STEPS, the step ending at START + k*STEP) -> errors in that step
Profile = Callable[[int], int]


def last(seconds: int) -> Callable[[int], bool]:
    """True for the steps inside the last `seconds` before END."""
    return lambda k: START + k * STEP > END - seconds


def profile(base: int, *overrides: tuple[int, int]) -> Profile:
    """`base` errors per step, then (seconds before END, errors) from the widest to the narrowest."""

    def errors(k: int) -> int:
        value = base
        for seconds, err in overrides:
            if last(seconds)(k):
                value = err
        return value

    return errors


@dataclass(frozen=True)
class Scenario:
    job: str
    errors: Profile
    requests: Callable[[int], int] = lambda k: REQUESTS

    def counters(self) -> tuple[list[int], list[int]]:
        """(errors, total) running sums at every sample."""
        e, n, errs, tots = 0, 0, [0], [0]
        for k in range(1, STEPS + 1):
            req = self.requests(k)
            e += min(self.errors(k), req)
            n += req
            errs.append(e)
            tots.append(n)
        return errs, tots

    def ratio(self, window_s: int) -> float | None:
        errs, tots = self.counters()
        back = window_s // STEP
        total = tots[-1] - tots[-1 - back]
        return None if total == 0 else (errs[-1] - errs[-1 - back]) / total


DENSE_FROM = END - 3 * 86400 - 7200


def written(k: int) -> bool:
    t = START + k * STEP
    return k == 0 or t == END - 30 * 86400 or t >= DENSE_FROM


def openmetrics(scenarios: list[Scenario], extra: str = "") -> str:
    lines = ["# TYPE http_requests counter"]
    for sc in scenarios:
        errs, tots = sc.counters()
        for code, values in (("500", errs), ("200", [t - e for t, e in zip(tots, errs)])):
            for k, v in enumerate(values):
                if written(k):
                    lines.append(
                        f'http_requests_total{{job="{sc.job}",code="{code}"}} {v} {START + k * STEP}'
                    )
    return "\n".join(lines) + "\n" + extra + "# EOF\n"


def write_blocks(text: str, tmp: Path) -> Path:
    source = tmp / "history.om"
    source.write_text(text)
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    return data


def gauge_family(name: str, series: list[tuple[str, float]], seconds: int = 3600) -> str:
    """A gauge family sampled every STEP over the last `seconds` before END: (labels, value)."""
    lines = [f"# TYPE {name} gauge"]
    for labels, value in series:
        for t in range(END - seconds, END + 1, STEP):
            lines.append(f"{name}{{{labels}}} {value} {t}")
    return "\n".join(lines) + "\n"


def counter_family(name: str, series: list[tuple[str, float]], seconds: int = 86400) -> str:
    """A counter family growing by `value` per STEP over the last `seconds` before END."""
    base = name.removesuffix("_total")
    kind = "counter" if name.endswith("_total") else "unknown"
    lines = [f"# TYPE {base if kind == 'counter' else name} {kind}"]
    for labels, per_step in series:
        for i, t in enumerate(range(END - seconds, END + 1, STEP)):
            lines.append(f"{name}{{{labels}}} {per_step * i} {t}")
    return "\n".join(lines) + "\n"
