"""The shared Prometheus health: requests' outcomes per reader folded into ok / degraded / off,
with the reason and since when; and the header's short form of a reason. Outcomes here are
reported as the client reports them (the client's own faults are in test_prometheus_client and
test_prometheus_truth, against a real Prometheus)."""

from __future__ import annotations

from obs_tui.sources.service_health import HEARTBEAT, WAITING, ServiceHealth
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


def beat(health: ServiceHealth, reason: str = "") -> None:
    health.round_started(HEARTBEAT)
    if reason:
        health.failed(HEARTBEAT, reason)
    else:
        health.succeeded(HEARTBEAT)


def test_a_failing_heartbeat_fails_every_reader_answered_before_it():
    clock = Clock()
    health = ServiceHealth(clock)
    for reader in ("slo", "power"):
        health.round_started(reader)
        health.succeeded(reader)
    beat(health)
    assert health.capability().ok and health.reader("slo").ok
    clock.now = 1005.0
    beat(health, "cannot connect: Connection refused")  # the readers have not asked since
    cap = health.capability()
    assert (cap.ok, cap.state, cap.reason, cap.stale_since) == (
        False,
        "off",
        "cannot connect: Connection refused",
        1005.0,
    )
    for reader in ("slo", "power"):
        r = health.reader(reader)
        assert (r.ok, r.state, r.reason, r.stale_since) == (False, "off", cap.reason, 1005.0)
    assert health.reader("grid intensity").reason == cap.reason  # not asked yet: it cannot be
    clock.now = 1008.0
    health.round_started("slo")
    health.succeeded("slo")  # a fresher word than the heartbeat's: that reader is answered
    assert health.reader("slo").ok and not health.reader("power").ok
    assert health.capability().state == "degraded"


def test_the_heartbeat_recovers_readers_it_alone_failed_and_wakes_the_rest():
    clock = Clock()
    health = ServiceHealth(clock)
    woken = []
    health.on_recovery(lambda: woken.append(clock.now))
    for reader in ("slo", "power"):
        health.round_started(reader)
        health.succeeded(reader)
    clock.now = 1005.0
    beat(health, "no answer within 0.5s")
    beat(health, "no answer within 0.5s")
    clock.now = 1006.0
    health.round_started("slo")
    health.failed("slo", "cannot connect: Connection refused")  # its own request failed too
    assert health.reader("slo").stale_since == 1005.0  # stale since the first of the two
    clock.now = 1010.0
    beat(health)
    assert woken == [1010.0]  # once, on the recovery
    assert health.reader("power").ok  # only the heartbeat had failed it
    slo = health.reader("slo")
    assert (slo.ok, slo.reason, slo.stale_since) == (False, "cannot connect: Connection refused", 1006.0)
    cap = health.capability()
    assert cap.state == "degraded" and cap.reason == slo.reason  # until the reader's next answer
    health.round_started("slo")
    health.succeeded("slo")
    assert health.capability().ok and health.reader("slo").ok
    beat(health)
    assert woken == [1010.0]


def test_an_answered_heartbeat_never_hides_a_readers_failure():
    health = ServiceHealth()
    beat(health)
    health.round_started("slo")
    health.failed("slo", "series: malformed answer (unexpected JSON)")
    beat(health)
    slo = health.reader("slo")
    assert not slo.ok and "malformed" in slo.reason
    cap = health.capability()
    # Prometheus answers, that reader's answers are unusable: degraded, with its reason
    assert not cap.ok and cap.state == "degraded" and "malformed" in cap.reason
    assert health.reader(HEARTBEAT).ok


def test_a_failing_heartbeat_alone_is_off():
    health = ServiceHealth()
    beat(health, "HTTP 500: injected")
    cap = health.capability()
    assert cap.state == "off" and cap.reason == "HTTP 500: injected"
    assert health.reader(HEARTBEAT).reason == "HTTP 500: injected"


def test_short_reason_says_each_thing_once_and_never_cuts_a_word():
    rapl = "estimate: no RAPL zones in /sys/class/powercap and no amd_energy sockets in /sys/class/hwmon"
    assert short_reason(rapl, "estimate") == "no RAPL zones"
    assert short_reason("cannot connect: Connection refused; check the URL") == "Connection refused"
    assert short_reason("malformed answer (unexpected JSON)") == "malformed answer"
    assert short_reason("HTTP 503: the service is unavailable right now, try later") == "HTTP 503"
    assert short_reason("HTTP 500: injected") == "HTTP 500: injected"
    cut = short_reason("waiting for the first answer from everybody", width=20)
    assert cut == "waiting for the…" and len(cut) <= 20
