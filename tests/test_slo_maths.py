"""The pure SLO maths: burn rates, the four Sloth alerts, Pyrra's budget, exhaustion, no-data."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obs_tui.analysis.slo import (
    ALERTS,
    alert_factor,
    alerts,
    budget_remaining,
    burn_rate,
    error_ratio,
    slo_status,
    time_to_exhaustion,
)
from obs_tui.raw import WINDOWS, SloReading, duration_s


def reading(objective=0.999, period="30d", ratios=None, errors=None, totals=None, **kw) -> SloReading:
    return SloReading(
        "s",
        "config",
        objective,
        period,
        "q",
        errors=tuple((errors or {}).items()),
        totals=tuple((totals or {}).items()),
        ratios=tuple((ratios or {}).items()),
        fetched_at=kw.pop("fetched_at", 100.0),
        **kw,
    )


def test_factors_are_sloths_for_30d_and_scale_with_the_period():
    assert [alert_factor(share, long, "30d") for _, long, _, share in ALERTS] == [14.4, 6.0, 3.0, 1.0]
    assert alert_factor(0.02, "1h", "28d") == pytest.approx(13.44)
    assert [(a[0], a[1], a[2]) for a in ALERTS] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]


def test_no_traffic_is_none_never_nan():
    assert error_ratio(0.0, 0.0) is None and error_ratio(None, None) is None
    assert error_ratio(None, 5.0) == 0.0  # no error series yet, but traffic
    assert error_ratio(float("nan"), 4.0) == 0.0 and error_ratio(1.0, float("nan")) is None
    status = slo_status(reading(totals={w: 0.0 for w in WINDOWS + ("30d",)}), now=100.0)
    assert status.state == "no_data" and status.sli is None and status.error_budget_remaining is None
    assert all(v is None for _, v in status.burn_rates) and not any(a.firing for a in status.alerts)
    assert status.reason == "no traffic in any window"
    assert all(a.firing is False for a in status.alerts)  # known: nothing burns without traffic


def test_series_absent_is_not_no_traffic_and_alerts_are_unknown():
    """An answer with no total in any window: the metric does not exist (a typo, a renamed
    metric), which a quiet service (totals there and 0) must not be confused with."""
    absent = slo_status(reading(), now=100.0)
    assert absent.state == "no_data" and absent.reason.startswith("series absent")
    assert absent.alerts and all(a.firing is None for a in absent.alerts)
    never = slo_status(reading(fetched_at=None), now=100.0)  # no answer yet: unknown too
    assert never.reason == "waiting for the first query" and all(a.firing is None for a in never.alerts)


def test_burn_budget_and_exhaustion():
    totals = {w: 100.0 for w in WINDOWS + ("30d",)}
    errors = {w: 0.05 for w in WINDOWS} | {"30d": 0.025, "1h": 2.0}
    status = slo_status(reading(errors=errors, totals=totals), now=130.0)
    burns = dict(status.burn_rates)
    assert burns["5m"] == pytest.approx(0.5) and burns["1h"] == pytest.approx(20.0)
    assert status.sli == pytest.approx(0.99975)
    assert status.error_budget_remaining == pytest.approx(0.75)
    # 75 % of 30 days left, burning 20x: 0.75 * 30 d / 20
    assert status.time_to_exhaustion_s == pytest.approx(0.75 * 30 * 86400 / 20)
    assert status.data_age_s == 30.0 and status.state == "ok"
    firing = [a for a in status.alerts if a.firing]
    assert firing == []  # 1h burns at 20 but 5m only at 0.5: the page waits for both


def test_alert_fires_only_above_both_windows_strictly():
    budget = 1 - 0.999
    ratios = {w: 0.0 for w in WINDOWS}
    ratios.update({"1h": 14.41 * budget, "5m": 14.41 * budget})
    assert [a.firing for a in alerts(ratios, 0.999, "30d")] == [True, False, False, False]
    ratios["5m"] = 14.4 * budget  # equal is not above (Sloth's >)
    assert not alerts(ratios, 0.999, "30d")[0].firing
    ratios["5m"] = None
    assert not alerts(ratios, 0.999, "30d")[0].firing


def test_unreachable_page_is_flagged():
    flags = [(a.factor, a.reachable) for a in alerts({}, 0.9, "30d")]
    assert flags == [(14.4, False), (6.0, True), (3.0, True), (1.0, True)]
    assert all(a.reachable for a in alerts({}, 0.95, "30d"))  # 14.4 * 0.05 = 0.72


def test_budget_overspent_and_exhaustion_edges():
    assert budget_remaining(0.002, 0.999) == pytest.approx(-1.0)
    assert time_to_exhaustion(-1.0, 5.0, "30d") == 0.0
    assert time_to_exhaustion(0.5, 0.0, "30d") is None and time_to_exhaustion(None, 1.0, "30d") is None


def test_recorded_ratios_and_their_nan():
    status = slo_status(reading(ratios={"5m": 0.002, "1h": float("nan"), "30d": 0.0005}), now=100.0)
    assert dict(status.burn_rates)["5m"] == pytest.approx(2.0) and dict(status.burn_rates)["1h"] is None
    assert status.sli == pytest.approx(0.9995)


def test_waiting_errors_and_stale_data():
    assert slo_status(reading(fetched_at=None), 0.0).state == "no_data"
    failed = slo_status(reading(fetched_at=None, error="query x: cannot connect"), 0.0)
    assert failed.state == "error" and "cannot connect" in failed.reason
    stale = slo_status(reading(totals={"5m": 1.0}, error="query x: HTTP 500"), 160.0)
    assert stale.state == "ok" and stale.last_error and "last refresh failed" in stale.reason
    assert stale.data_age_s == 60.0
    bad = slo_status(reading(problem="threshold 0.3s is not a bucket"), 0.0)
    assert bad.state == "error" and bad.reason.startswith("threshold")
    assert slo_status(reading(objective=None, fetched_at=None), 0.0).state == "no_data"


def test_durations():
    assert duration_s("5m") == 300 and duration_s("3d") == 259200 and duration_s("1w") == 604800
    for bad in ("30", "0d", "1.5h", "d", "1y"):
        with pytest.raises(ValueError):
            duration_s(bad)


@given(st.floats(0.5, 0.99999), st.floats(0, 1e6), st.floats(1e-6, 1e6))
def test_burn_is_ratio_over_budget(objective, errors, total):
    ratio = error_ratio(errors, total)
    burn = burn_rate(ratio, objective)
    assert ratio is not None and burn is not None and math.isfinite(burn)
    assert burn * (1 - objective) == pytest.approx(ratio)
