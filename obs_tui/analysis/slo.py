"""SLO maths, pure: error ratios, burn rates, multi-window alerts, error budget, time to exhaustion.

- error ratio over a window = errors / total (both as rates or increases over that window);
  no traffic (total absent or 0) is None, never NaN.
- burn rate = error ratio / (1 - objective): 1.0 spends the budget exactly over the period.
- The four multi-window alerts of the SRE workbook as Sloth generates them: an alert fires when
  both its long and its short window burn above its factor (Sloth writes this as
  ratio > factor * (1 - objective) on both windows, and so do we). A factor spends a share of
  the budget over the long window: factor = share * period / long, i.e. for 30 d:
  page 2 % in 1 h (14.4), page 5 % in 6 h (6), ticket 10 % in 1 d (3), ticket 10 % in 3 d (1).
- Period SLI and budget remaining as Pyrra computes them: SLI = 1 - errors/total over the whole
  period; remaining = ((1 - objective) - (1 - SLI)) / (1 - objective), negative once overspent.
- Time to exhaustion at the current 1 h burn: remaining * period / burn_1h (0 once spent,
  None when nothing burns).
- An alert whose factor * (1 - objective) > 1 can never fire (even 100 % errors burn at only
  1 / (1 - objective)): such alerts are flagged unreachable.
"""

from __future__ import annotations

import math
from typing import Any

from obs_tui.model import SloAlert, SloStatus
from obs_tui.raw import WINDOWS, SloRaw, SloReading, duration_s

# severity, long window, short window, share of the period's budget spent over the long window
ALERTS = (
    ("page", "1h", "5m", 0.02),
    ("page", "6h", "30m", 0.05),
    ("ticket", "1d", "2h", 0.10),
    ("ticket", "3d", "6h", 0.10),
)


def error_ratio(errors: float | None, total: float | None) -> float | None:
    """errors / total; None when there was no traffic. Absent errors with traffic are 0."""
    if total is None or not math.isfinite(total) or total <= 0:
        return None
    errors = 0.0 if errors is None or not math.isfinite(errors) else max(errors, 0.0)
    return errors / total


def burn_rate(ratio: float | None, objective: float) -> float | None:
    return None if ratio is None else ratio / (1.0 - objective)


def alert_factor(share: float, long: str, period: str) -> float:
    """The burn-rate threshold that spends `share` of the period's budget over `long`."""
    return round(share * duration_s(period) / duration_s(long), 6)


def alerts(
    ratios: dict[str, float | None], objective: float, period: str, known: bool = True
) -> tuple[SloAlert, ...]:
    """known=False (no answer yet, or no series at all): firing is None, unknown, not False."""
    budget = 1.0 - objective
    out = []
    for severity, long, short, share in ALERTS:
        factor = alert_factor(share, long, period)
        threshold = factor * budget
        lr, sr = ratios.get(long), ratios.get(short)
        firing = (lr is not None and sr is not None and lr > threshold and sr > threshold) if known else None
        out.append(
            SloAlert(severity, long, short, factor, firing, threshold=threshold, reachable=threshold <= 1.0)
        )
    return tuple(out)


def budget_remaining(period_ratio: float | None, objective: float) -> float | None:
    """Pyrra's ((1 - objective) - (1 - SLI)) / (1 - objective); None without traffic."""
    if period_ratio is None:
        return None
    return ((1.0 - objective) - period_ratio) / (1.0 - objective)


def time_to_exhaustion(remaining: float | None, burn_1h: float | None, period: str) -> float | None:
    """Seconds until the budget is gone at the current 1 h burn; 0 once spent, None if not burning."""
    if remaining is None:
        return None
    if remaining <= 0:
        return 0.0
    if burn_1h is None or burn_1h <= 0:
        return None
    return remaining * duration_s(period) / burn_1h


def window_ratios(reading: SloReading) -> dict[str, float | None]:
    """Error ratio per window (WINDOWS and the period), None where there was no traffic."""
    errors, totals, recorded = dict(reading.errors), dict(reading.totals), dict(reading.ratios)
    out: dict[str, float | None] = {}
    for window in (*WINDOWS, reading.period):
        if window in recorded:
            value = recorded[window]
            out[window] = value if math.isfinite(value) else None  # Sloth's 0/0 is NaN
        else:
            out[window] = error_ratio(errors.get(window), totals.get(window))
    return out


SERIES_ABSENT = "series absent: no series matches the query in any window (check the metric name and labels)"


def series_absent(reading: SloReading) -> bool:
    """An answered query with no total (nor recorded ratio) in any window: the metric does not
    exist, unlike a quiet service, whose totals are there and 0."""
    return reading.fetched_at is not None and not reading.totals and not reading.ratios


def slo_status(reading: SloReading, now: float) -> SloStatus:
    age = None if reading.fetched_at is None else max(now - reading.fetched_at, 0.0)
    objective = reading.objective
    base: dict[str, Any] = dict(
        name=reading.name,
        source=reading.source,
        period=reading.period,
        promql=reading.promql,
        data_age_s=age,
        last_error=reading.error,
        description=reading.description,
    )
    empty = tuple((w, None) for w in WINDOWS)
    if reading.problem or objective is None:
        reason = reading.problem or reading.error or "waiting for the first query"
        state = "error" if reading.problem or reading.error else "no_data"
        return SloStatus(
            objective=objective or 0.0,
            sli=None,
            error_budget_remaining=None,
            burn_rates=empty,
            alerts=(),
            state=state,
            reason=reason,
            **base,
        )
    ratios = window_ratios(reading)
    burns = tuple((w, burn_rate(ratios[w], objective)) for w in WINDOWS)
    period_ratio = ratios[reading.period]
    remaining = budget_remaining(period_ratio, objective)
    burn_1h = dict(burns)["1h"]
    known = reading.fetched_at is not None and not series_absent(reading)
    if reading.fetched_at is None:
        state = "error" if reading.error else "no_data"
        reason = reading.error or "waiting for the first query"
    elif not known:
        state, reason = "no_data", SERIES_ABSENT
    elif all(r is None for r in ratios.values()):
        state, reason = "no_data", "no traffic in any window"
    else:
        state = "ok"
        reason = f"last refresh failed: {reading.error}" if reading.error else ""
    return SloStatus(
        objective=objective,
        sli=None if period_ratio is None else 1.0 - period_ratio,
        error_budget_remaining=remaining,
        burn_rates=burns,
        alerts=alerts(ratios, objective, reading.period, known),
        state=state,
        reason=reason,
        time_to_exhaustion_s=time_to_exhaustion(remaining, burn_1h, reading.period),
        error_ratios=tuple((w, ratios[w]) for w in (*WINDOWS, reading.period)),
        burn_history=reading.burn_history,
        **base,
    )


def slo_section(prev: SloRaw | None, cur: SloRaw, dt: float) -> tuple[SloStatus, ...]:
    """The `slo` stage's analysis (obs_tui/pipeline.py)."""
    return tuple(slo_status(r, cur.now) for r in cur.readings)
