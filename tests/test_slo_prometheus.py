"""SLOs end to end against a real Prometheus holding known history (promtool blocks):
config, Sloth and OpenSLO definitions, Autometrics and Sloth-rule discovery, latency buckets."""

from __future__ import annotations

import time

import pytest

from obs_tui.analysis.slo import slo_section
from obs_tui.config import ConfigError, parse
from obs_tui.raw import WINDOWS, duration_s
from obs_tui.sources.prometheus import Client
from obs_tui.sources.slo import POOL, SloSource
from obs_tui.sources.slo_specs import load_all
from tests import slo_history as h
from tests.fault_proxy import FaultProxy
from tests.prometheus_server import prometheus
from tests.test_prometheus_client import _until

D = 5  # per-step errors of the 0.05 % baseline (REQUESTS = 10 000 a step)
SCENARIOS = [
    h.Scenario("steady", h.profile(D)),  # burn 0.5 everywhere
    h.Scenario("fast", h.profile(D, (3600, 200))),  # 1h and 5m at 2 %: page
    h.Scenario("recovered", h.profile(D, (3600, 200), (300, 0))),  # 1h hot, 5m clean: quiet
    h.Scenario("slow", h.profile(D, (3 * 86400, 15))),  # 3d and 6h at 1.5x: ticket
    h.Scenario("sixhour", h.profile(D, (6 * 3600, 70))),  # 6h at 7x, 3d at 1.04x
    h.Scenario("quiet", h.profile(D), requests=lambda k: 0 if h.last(7200)(k) else h.REQUESTS),
    h.Scenario("idle", h.profile(0), requests=lambda k: 0),
]
EXPECTED_FIRING = {
    "steady": [],
    "fast": [("page", "1h")],
    "recovered": [],
    "slow": [("ticket", "3d")],
    "sixhour": [("page", "6h"), ("ticket", "3d")],
    "quiet": [],
    "idle": [],
}
AUTOMETRICS = (
    h.counter_family(
        "function_calls_total",
        [
            ('function="pay",module="shop",objective_name="api",objective_percentile="99",result="ok"', 95),
            ('function="pay",module="shop",objective_name="api",objective_percentile="99",result="error"', 5),
            ('function="misc",module="shop",result="ok"', 10),  # no objective: not an SLO
        ],
    )
    + h.counter_family(
        "function_calls_duration_seconds_bucket",
        [
            (
                f'function="pay",objective_name="api",objective_percentile="99",'
                f'objective_latency_threshold="0.25",le="{le}"',
                n,
            )
            for le, n in (("0.1", 60), ("0.25", 97), ("1", 99), ("+Inf", 100))
        ]
        + [
            (
                f'function="ship",objective_name="ship",objective_percentile="99.9",'
                f'objective_latency_threshold="0.3",le="{le}"',
                n,
            )
            for le, n in (("0.25", 9), ("+Inf", 10))
        ],
    )
    + h.counter_family(
        "function_calls_duration_seconds_count",
        [
            (
                'function="pay",objective_name="api",objective_percentile="99",objective_latency_threshold="0.25"',
                100,
            ),
            (
                'function="ship",objective_name="ship",objective_percentile="99.9",objective_latency_threshold="0.3"',
                10,
            ),
        ],
    )
)
SLOTH_RULES = (
    "".join(
        h.gauge_family(
            f"slo:sli_error:ratio_rate{w}",
            [('sloth_id="pay-avail",sloth_service="pay",sloth_slo="avail"', value)],
        )
        for w, value in (
            ("5m", 0.02),
            ("30m", 0.016),
            ("1h", 0.0152),
            ("2h", 0.004),
            ("6h", 0.002),
            ("1d", 0.0008),
            ("3d", 0.0005),
            ("30d", 0.00025),
        )
    )
    + h.gauge_family(
        "slo:objective:ratio", [('sloth_id="pay-avail",sloth_service="pay",sloth_slo="avail"', 0.999)]
    )
    + h.gauge_family(
        "slo:time_period:days", [('sloth_id="pay-avail",sloth_service="pay",sloth_slo="avail"', 30)]
    )
)


def config_slos() -> str:
    out = []
    for sc in SCENARIOS:
        out.append(f"""
[[slo]]
name = "{sc.job}"
objective = 0.999
error_query = 'sum(rate(http_requests_total{{job="{sc.job}",code="500"}}[{{{{.window}}}}]))'
total_query = 'sum(rate(http_requests_total{{job="{sc.job}"}}[{{{{.window}}}}]))'
""")
    out.append("""
[[slo]]
name = "loose"
objective = 0.9
error_query = 'sum(rate(http_requests_total{job="fast",code="500"}[{{.window}}]))'
total_query = 'sum(rate(http_requests_total{job="fast"}[{{.window}}]))'
""")
    return "".join(out)


@pytest.fixture(scope="module")
def history_prom(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slo")
    data = h.write_blocks(h.openmetrics(SCENARIOS, AUTOMETRICS + SLOTH_RULES), tmp)
    with prometheus(tmp, data_dir=data, scrape_self=False) as url:
        yield url


def statuses(url: str, config_text: str, discover: bool = False, slo_files=None):
    top = f"slo_files = {slo_files!r}\n".replace("'", '"') if slo_files else ""
    config = parse(top + f'[prometheus]\nurl = "{url}"\ntimeout_s = 10\n' + config_text)
    client = Client.from_config(config.prometheus)
    source = SloSource(client, load_all(config), discover=discover, clock=lambda: h.END)
    try:
        assert source.wait_ready(60)
        raw = source.sample(h.END + 7)
    finally:
        source.close()
        client.close()
    assert source.client.requests >= 1
    return {s.name: s for s in slo_section(None, raw, 0.0)}, source


def test_burn_rates_equal_an_independent_computation(history_prom):
    got, source = statuses(history_prom, config_slos())
    for sc in SCENARIOS:
        status = got[sc.job]
        for window, burn in status.burn_rates:
            expected = sc.ratio(int(duration_s(window)))
            if expected is None:
                assert burn is None, (sc.job, window)
            else:
                assert burn == pytest.approx(expected / 0.001, rel=1e-6, abs=1e-12), (sc.job, window)
        period = sc.ratio(30 * 86400)
        if period is None:
            assert status.sli is None and status.error_budget_remaining is None
        else:
            assert status.sli == pytest.approx(1 - period, rel=1e-9)
            assert status.error_budget_remaining == pytest.approx((0.001 - period) / 0.001, rel=1e-6)
        firing = [(a.severity, a.long) for a in status.alerts if a.firing]
        assert firing == EXPECTED_FIRING[sc.job], sc.job
        for a in status.alerts:  # and each alert against the independent ratios
            long, short = (sc.ratio(int(duration_s(w))) for w in (a.long, a.short))
            threshold = a.factor * 0.001
            assert a.firing == (
                long is not None and short is not None and long > threshold and short > threshold
            )
        assert status.data_age_s == 7.0 and status.last_error == ""
    assert got["idle"].state == "no_data" and got["quiet"].state == "ok"
    assert dict(got["quiet"].burn_rates)["1h"] is None and dict(got["quiet"].burn_rates)["6h"] is not None
    fast = got["fast"]
    burn_1h = dict(fast.burn_rates)["1h"]
    assert fast.time_to_exhaustion_s == pytest.approx(fast.error_budget_remaining * 30 * 86400 / burn_1h)
    assert [a.reachable for a in got["loose"].alerts] == [False, True, True, True]
    assert "obs_window" in fast.promql and fast.promql.count("[1h]") == 2


def test_one_request_per_slo_per_round_sent_by_a_pool(history_prom):
    config = parse(f'[prometheus]\nurl = "{history_prom}"\ntimeout_s = 10\n' + config_slos())
    specs = load_all(config)
    with FaultProxy(history_prom, slow_s=0.3) as proxy:
        proxy.mode = "slow"  # every request takes 0.3 s: the pool's requests overlap
        source = SloSource(
            Client.from_config({**config.prometheus, "url": proxy.url}),
            specs,
            discover=False,
            clock=lambda: h.END,
        )
        try:
            assert source.wait_ready(30)
            first = proxy.paths()
            # one instant query per SLO, and one range query for every sparkline
            assert sorted(first) == ["/api/v1/query"] * len(specs) + ["/api/v1/query_range"]
            assert proxy.max_inflight == POOL
            source.poller.refresh()
            _until(lambda: len(proxy.paths()) >= len(first) + len(specs))
            time.sleep(0.5)
            assert proxy.paths()[len(first) :] == ["/api/v1/query"] * len(specs)
        finally:
            source.close()


def test_sparkline_is_the_1h_burn_history(history_prom):
    got, _ = statuses(history_prom, config_slos())
    fast = got["fast"].burn_history
    assert len(fast) == 25 and fast[-1] == pytest.approx(dict(got["fast"].burn_rates)["1h"], rel=1e-6)
    assert fast[0] == pytest.approx(0.5, rel=1e-6)  # 6 h ago: the baseline
    assert got["idle"].burn_history == (None,) * 25


def test_sloth_and_openslo_files(history_prom, tmp_path):
    (tmp_path / "sloth.yaml").write_text("""
version: "prometheus/v1"
service: "shop"
slos:
  - name: "fast-availability"
    objective: 99.9
    description: "5xx of the fast job"
    sli:
      events:
        error_query: sum(rate(http_requests_total{job="fast",code="500"}[{{.window}}]))
        total_query: sum(rate(http_requests_total{job="fast"}[{{.window}}]))
  - name: "slow-raw"
    objective: 99.9
    sli:
      raw:
        error_ratio_query: |
          sum(rate(http_requests_total{job="slow",code="500"}[{{.window}}]))
          /
          sum(rate(http_requests_total{job="slow"}[{{.window}}]))
""")
    (tmp_path / "openslo.yaml").write_text("""
apiVersion: openslo/v1
kind: SLI
metadata:
  name: sixhour-errors
spec:
  ratioMetric:
    counter: true
    bad:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="sixhour",code="500"}
    total:
      metricSource:
        type: Prometheus
        spec:
          query: http_requests_total{job="sixhour"}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: sixhour-availability
spec:
  service: shop
  indicatorRef: sixhour-errors
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: steady-good
spec:
  indicator:
    metadata:
      name: steady-good
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total{job="steady",code="200"}[{{.window}}]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(rate(http_requests_total{job="steady"}[{{.window}}]))
  timeWindow:
    - duration: 30d
  objectives:
    - targetPercent: 99.9
""")
    got, _ = statuses(history_prom, "", slo_files=[str(tmp_path / "*.yaml")])
    assert {s.source for s in got.values()} == {"sloth", "openslo"}
    by_job = {
        "shop-fast-availability": "fast",
        "shop-slow-raw": "slow",
        "sixhour-availability": "sixhour",
        "steady-good": "steady",
    }
    for name, job in by_job.items():
        sc = next(s for s in SCENARIOS if s.job == job)
        for window in WINDOWS:
            assert dict(got[name].burn_rates)[window] == pytest.approx(
                sc.ratio(int(duration_s(window))) / 0.001, rel=1e-6
            ), (name, window)
        assert [(a.severity, a.long) for a in got[name].alerts if a.firing] == EXPECTED_FIRING[job]
    assert got["shop-fast-availability"].description == "5xx of the fast job"


def test_discovery_of_autometrics_and_sloth_rules(history_prom):
    got, _ = statuses(history_prom, "", discover=True)
    assert set(got) == {"api success", "api latency", "ship latency", "pay-avail"}
    ship = got["ship latency"]  # its threshold is no bucket: an error, not 0 % slow calls
    assert ship.state == "error" and ship.objective == 0.999
    assert ship.reason.startswith("threshold 0.3s is not a bucket of function_calls_duration_seconds")
    success = got["api success"]
    assert success.source == "autometrics" and success.objective == 0.99
    # 5 errors of 100 calls a step, everywhere in the last day: ratio 0.05, burn 5
    for window in ("5m", "1h", "1d"):
        assert dict(success.burn_rates)[window] == pytest.approx(0.05 / 0.01, rel=1e-6)
    latency = got["api latency"]
    # 97 of 100 calls within the 0.25 s bucket
    assert dict(latency.burn_rates)["1h"] == pytest.approx(0.03 / 0.01, rel=1e-6)
    assert 'le="0.25"' in latency.promql
    sloth = got["pay-avail"]
    assert sloth.source == "sloth" and sloth.objective == 0.999 and sloth.period == "30d"
    assert dict(sloth.burn_rates)["5m"] == pytest.approx(20.0) and sloth.sli == pytest.approx(0.99975)
    assert [(a.severity, a.long) for a in sloth.alerts if a.firing] == [("page", "1h")]


def test_latency_slo_threshold_must_be_a_bucket(history_prom):
    text = """
[[slo]]
name = "pay-latency"
objective = 0.99
histogram = "function_calls_duration_seconds"
threshold_s = 0.25
selector = 'function="pay"'
[[slo]]
name = "pay-latency-bad"
objective = 0.99
histogram = "function_calls_duration_seconds"
threshold_s = 0.3
selector = 'function="pay"'
"""
    got, _ = statuses(history_prom, text)
    assert dict(got["pay-latency"].burn_rates)["5m"] == pytest.approx(3.0, rel=1e-6)
    bad = got["pay-latency-bad"]
    assert bad.state == "error"
    assert bad.reason == (
        "threshold 0.3s is not a bucket of function_calls_duration_seconds (le: 0.1, 0.25, 1)"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[[slo]]\nname='a'\nobjective=0.99\nerror_query='x'\ntotal_query='y{{.window}}'",
            "slo[0].error_query' must contain {{.window}}",
        ),
        (
            "[[slo]]\nname='a'\nobjective=0.99\nerror_query='x[{{.window}}]'",
            "'slo[0].total_query' is missing",
        ),
        ("[[slo]]\nname='a'\nobjective=0.99\nhistogram='h_bucket'\nthreshold_s=0.3", "base name"),
        ("[[slo]]\nname='a'\nobjective=0.99\nhistogram='h'", "threshold_s' must be a bucket bound"),
        ("[[slo]]\nname='a'\nobjective=0.99\nhistogram='h'\nthreshold_s=1\nerror_query='e'", "not both"),
        (
            "[[slo]]\nname='a'\nobjective=0.99\nperiod='month'\nhistogram='h'\nthreshold_s=1",
            "period' is not a duration",
        ),
    ],
)
def test_bad_slo_config_is_one_line(text, message):
    with pytest.raises(ConfigError) as err:
        parse(text, "/etc/obs.toml")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99.9\n    sli: {plugin: {id: x}}\n",
            "Sloth plugins are not supported",
        ),
        (
            "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 100\n"
            "    sli: {events: {error_query: 'e[{{.window}}]', total_query: 't[{{.window}}]'}}\n",
            "objective must be",
        ),
        (
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {indicatorRef: nope}\n",
            "names no SLI",
        ),
        ("a: [1, 2\n", "not valid YAML"),
        ("kind: Thing\n", "neither Sloth"),
    ],
)
def test_bad_slo_files_are_one_line(tmp_path, body, message):
    (tmp_path / "x.yaml").write_text(body)
    config = parse(f'slo_files = ["{tmp_path}/*.yaml"]\n')
    with pytest.raises(ConfigError) as err:
        load_all(config)
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="nothing matches"):
        load_all(parse(f'slo_files = ["{tmp_path}/none-*.yaml"]\n'))


def test_a_metric_that_does_not_exist_reads_series_absent_not_no_traffic(history_prom):
    ghost = """
[[slo]]
name = "ghost"
objective = 0.999
error_query = 'sum(rate(http_requests_totl{job="idle",code="500"}[{{.window}}]))'
total_query = 'sum(rate(http_requests_totl{job="idle"}[{{.window}}]))'
"""
    got, _ = statuses(history_prom, config_slos() + ghost)
    assert got["ghost"].state == "no_data" and got["ghost"].reason.startswith("series absent")
    assert all(a.firing is None for a in got["ghost"].alerts)  # unknown, not quiet
    idle = got["idle"]  # the series exist, with no requests: a quiet service
    assert idle.state == "no_data" and idle.reason == "no traffic in any window"
    assert all(a.firing is False for a in idle.alerts)
