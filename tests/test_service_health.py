"""The shared Prometheus health: requests' outcomes per reader folded into ok / degraded / off,
with the reason and since when; and the header's short form of a reason. Outcomes here are
reported as the client reports them (the client's own faults are in test_prometheus_client and
test_prometheus_truth, against a real Prometheus)."""

from __future__ import annotations

from obs_tui.sources.service_health import WAITING, ServiceHealth
from obs_tui.tui.fmt import short_reason


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_nothing_answered_yet_is_off_not_ok():
    health = ServiceHealth()
    cap = health.capability()
    assert not cap.ok and cap.state == "off" and cap.reason == WAITING
    assert health.reader("slo") is None


def test_off_degraded_ok_and_stale_since():
    clock = Clock()
    health = ServiceHealth(clock)
    for reader in ("slo", "grid intensity"):
        health.round_started(reader)
        health.succeeded(reader)
    assert health.capability().ok and health.capability().state == "ok"
    clock.now = 1010.0
    health.round_started("slo")
    health.failed("slo", "HTTP 500: injected")  # one reader fails, the other is answered
    cap = health.capability()
    assert (cap.ok, cap.state, cap.reason, cap.stale_since) == (
        False,
        "degraded",
        "HTTP 500: injected",
        1010.0,
    )
    assert health.reader("slo").state == "off" and health.reader("grid intensity").ok
    clock.now = 1020.0
    health.round_started("grid intensity")
    health.failed("grid intensity", "cannot connect: Connection refused")
    health.round_started("slo")
    health.failed("slo", "cannot connect: Connection refused")
    cap = health.capability()
    # nothing answers: off, since the reader failing longest began to
    assert (cap.state, cap.reason, cap.stale_since) == ("off", "cannot connect: Connection refused", 1010.0)
    for reader in ("slo", "grid intensity"):
        health.round_started(reader)
        health.succeeded(reader)
    assert health.capability().ok and health.capability().stale_since is None


def test_a_round_answered_in_part_is_degraded_until_a_whole_round_is():
    health = ServiceHealth()
    health.round_started("slo")
    health.failed("slo", "series: malformed answer (unexpected JSON)")
    health.succeeded("slo")  # the queries after the failed discovery were answered
    cap = health.capability()
    assert cap.state == "degraded" and "malformed" in cap.reason
    health.round_started("slo")
    health.succeeded("slo")
    assert health.capability().ok


def test_without_rounds_the_last_outcome_wins():
    health = ServiceHealth()  # doctor's one-off client: no poller
    health.failed("client", "no answer within 1s")
    assert health.capability().state == "off"
    health.succeeded("client")
    assert health.capability().ok


def test_short_reason_says_each_thing_once_and_never_cuts_a_word():
    rapl = "estimate: no RAPL zones in /sys/class/powercap and no amd_energy sockets in /sys/class/hwmon"
    assert short_reason(rapl, "estimate") == "no RAPL zones"
    assert short_reason("cannot connect: Connection refused; check the URL") == "Connection refused"
    assert short_reason("malformed answer (unexpected JSON)") == "malformed answer"
    assert short_reason("HTTP 503: the service is unavailable right now, try later") == "HTTP 503"
    assert short_reason("HTTP 500: injected") == "HTTP 500: injected"
    cut = short_reason("waiting for the first answer from everybody", width=20)
    assert cut == "waiting for the…" and len(cut) <= 20
