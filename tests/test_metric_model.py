"""The metric model: service names, what /metrics publishes and read-only mode reads back, the
rules file and the dashboard.

The live half runs real components only: four real Python HTTP servers (two of one service by
OTEL_SERVICE_NAME, one named by a config rule, one HTTPS named by comm:port), real keep-alive
traffic, a real agent (eBPF probes, privileges dropped) and a real Prometheus that scrapes it
and evaluates deploy/prometheus/obs-tui-rules.yml.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from obs_tui.service_names import RuleError, ServiceRule, rules_from_config, service_name
from obs_tui.sources.procs import container_id
from tests import servers
from tests.prometheus_server import prometheus

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "obs-tui-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "obs-tui.json"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the agent's eBPF probes need root")


# ---- the naming rule (pure) ----------------------------------------------------------------


def test_otel_service_name_comes_first():
    rules = (ServiceRule("by-port", port=8080),)
    assert service_name("python3", (8080,), env_name="checkout", rules=rules) == "checkout"


def test_rules_in_order_then_comm_and_lowest_port():
    rules = rules_from_config(
        [
            {"name": "billing", "cmdline": r"billing\.wsgi"},
            {"name": "api", "exe": "python3*", "port": 8080},
            {"name": "any-8080", "port": 8080},
        ]
    )
    assert service_name("gunicorn", (8000,), cmdline="gunicorn billing.wsgi -w 2", rules=rules) == "billing"
    # exe globs match the base name or the whole path; every given matcher must match
    assert service_name("python3", (8080,), exe="/usr/bin/python3.11", rules=rules) == "api"
    assert service_name("node", (8080,), exe="/usr/bin/node", rules=rules) == "any-8080"
    # no exe (another user's process after the drop): the command line's first word stands in
    assert service_name("python3", (8080,), cmdline="/usr/bin/python3.11 app.py", rules=rules) == "api"
    assert service_name("python3", (9090, 8081), rules=rules) == "python3:8081"
    assert service_name("worker", ()) == "worker"


def test_unusable_otel_names_fall_through():
    for bad in ("", "   ", 'a"b', "x" * 200, "tab\there", "new\nline"):
        assert service_name("python3", (8080,), env_name=bad) == "python3:8080"


@pytest.mark.parametrize(
    "rule, needle",
    [
        ({"name": "", "port": 1}, "name"),
        ({"name": "a"}, "matches every process"),
        ({"name": "a", "cmdline": "("}, "not a valid regular expression"),
        ({"name": "a", "port": 70000}, "TCP port"),
    ],
)
def test_bad_rules_are_one_line(rule, needle):
    with pytest.raises(RuleError, match=needle):
        rules_from_config([rule])


def test_bad_rule_in_the_config_exits_2(tmp_path):
    from tests.test_cli import assert_one_line_error, run_cli

    conf = tmp_path / "c.toml"
    conf.write_text('[[red.services]]\nname = "x"\ncmdline = "[oops"\n')
    assert_one_line_error(
        run_cli("--config", str(conf), "doctor"), "red.services[0].cmdline", "regular expression"
    )
    conf.write_text("[[red.services]]\nport = 80\n")
    assert_one_line_error(run_cli("--config", str(conf), "doctor"), "red.services[0].name")


def test_container_id_from_cgroup_paths():
    cid = "4f1c" * 16
    assert container_id(f"0::/system.slice/docker-{cid}.scope\n") == cid
    assert container_id(f"0::/kubepods/burstable/pod1/cri-containerd-{cid}.scope\n") == cid
    assert container_id(f"12:pids:/docker/{cid}\n") == cid
    assert container_id("0::/user.slice/user-1000.slice/session-3.scope\n") == ""


# ---- the rules file -------------------------------------------------------------------------


def test_promtool_checks_the_rules():
    result = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_of_the_burn_rate_alerts():
    result = subprocess.run(
        ["promtool", "test", "rules", str(ROOT / "tests" / "promtool" / "obs-tui-rules.test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the dashboard, statically ----------------------------------------------------------------


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_json_is_what_its_generator_writes():
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import make_dashboard
    finally:
        sys.path.remove(str(DASHBOARD.parent))
    assert make_dashboard.dashboard() == _dashboard(), "run deploy/grafana/make_dashboard.py"


def _lost_keys(original, decoded, path=""):
    """Keys of `original` that Grafana's schema models did not take, and changed values."""
    if isinstance(original, dict):
        assert isinstance(decoded, dict), path
        out = []
        for key, value in original.items():
            if key not in decoded:
                out.append(f"{path}.{key}")
            else:
                out += _lost_keys(value, decoded[key], f"{path}.{key}")
        return out
    if isinstance(original, list):
        assert isinstance(decoded, list) and len(decoded) == len(original), path
        return [
            k for i, (a, b) in enumerate(zip(original, decoded)) for k in _lost_keys(a, b, f"{path}[{i}]")
        ]
    return [] if original == decoded else [f"{path}: {original!r} became {decoded!r}"]


def test_dashboard_reads_through_grafanas_schema_models():
    """grafana-foundation-sdk (Grafana's generated schema types): every key of the dashboard,
    its panels, targets and variables is one the schema knows, and keeps its value."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel

    doc = _dashboard()
    model = Dashboard.from_json(doc)
    assert all(isinstance(p, RowPanel if p.type_val == "row" else Panel) for p in model.panels)
    decoded = json.loads(json.dumps(model, cls=JSONEncoder))
    assert _lost_keys(doc, decoded) == []


def _panels():
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def test_dashboard_lint():
    """The rules of Grafana's dashboard-linter that apply to a Prometheus dashboard."""
    doc = _dashboard()
    names = [v["name"] for v in doc["templating"]["list"]]
    assert names[:3] == ["datasource", "job", "instance"]  # template-{datasource,job,instance}-rule
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in doc["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))
    for panel in _panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]  # panel-datasource-rule
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]  # panel-units-rule
        assert panel["title"], panel  # panel-title-description-rule
        for target in panel["targets"]:
            expr = target["expr"]
            for window in re.findall(r"\[([^\]]+)\]", expr):  # target-rate-interval-rule
                assert window in ("$__rate_interval", "$__range"), (panel["title"], expr)
            if "obs:" not in expr:  # target-job-rule, target-instance-rule (recorded SLO
                assert 'job=~"$job"' in expr and 'instance=~"$instance"' in expr, expr  # series span hosts)


# ---- the live half ----------------------------------------------------------------------------


def _paths(i: int) -> list[str]:
    return [f"/users/{i % 7}", "/orders/9/items", "/health", "/status/503" if i % 4 == 0 else "/"]


def _traffic(ports: list[tuple[int, bool]], stop: threading.Event) -> None:
    """Keep-alive requests to every server (~15 per second each) until stopped."""
    from tests.test_red_probes import keepalive

    i = 0
    while not stop.is_set():
        for port, tls in ports:
            with contextlib.suppress(OSError):
                keepalive(port, _paths(i), tls=tls)
        i += 1
        stop.wait(0.25)


def _get(url: str, accept: str = "") -> str:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def _query(base: str, expr: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    doc = json.loads(_get(url))
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def _wait(predicate, timeout: float = 120.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


OLD_AGENT = """# TYPE obs_host_power_watts gauge
obs_host_power_watts{zone="host",source="rapl"} 30
obs_host_power_watts{zone="package-0",source="rapl"} 24
obs_host_power_watts{zone="dram-0",source="rapl"} 6
# TYPE obs_process_cpu_joules_total counter
obs_process_cpu_joules_total{pid="7",comm="old-api"} 100
# TYPE obs_build_info gauge
obs_build_info{version="0.0.9",host="old"} 1
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Servers, traffic, the agent and Prometheus; yields a dict of what a test needs."""
    if os.geteuid() != 0:
        pytest.skip("the agent's eBPF probes need root")
    from tests.test_readonly import static_target

    tmp = tmp_path_factory.mktemp("live")
    dirs = {name: tmp / name for name in ("a", "b", "c", "d", "prom")}
    for d in dirs.values():
        d.mkdir()
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(servers.python_server(dirs["a"], service="checkout"))
        b = stack.enter_context(servers.python_server(dirs["b"], service="checkout"))
        c = stack.enter_context(servers.python_server(dirs["c"]))
        d = stack.enter_context(servers.python_server(dirs["d"], tls=True))
        config = tmp / "agent.toml"
        config.write_text(
            f'[red]\nroutes = ["/users/{{id}}"]\n[[red.services]]\nname = "billing"\nport = {c.port}\n'
        )
        port = servers.free_port()
        agent = subprocess.Popen(
            servers.agent_command(config, port, 0.5),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(servers.stop, agent)
        servers.wait_port(port, agent, timeout=60)
        metrics = f"http://127.0.0.1:{port}/metrics"
        threading.Thread(
            target=_traffic,
            args=([(a.port, False), (b.port, False), (c.port, False), (d.port, True)], stop),
            daemon=True,
        ).start()
        stack.callback(stop.set)
        old = stack.enter_context(static_target(OLD_AGENT))
        prom = stack.enter_context(
            prometheus(dirs["prom"], targets=(f"127.0.0.1:{port}", old), rule_files=(str(RULES),))
        )
        yield {
            "metrics": metrics,
            "prometheus": prom,
            "config": config,
            "old": old,
            "agent": f"127.0.0.1:{port}",
            "servers": {"a": a, "b": b, "c": c, "d": d},
        }


def _http_samples(metrics: str) -> list:
    with contextlib.suppress(OSError):
        fams = {f.name: f for f in text_string_to_metric_families(_get(metrics))}
        fam = fams.get("http_server_request_duration_seconds")
        return [s for s in fam.samples if s.name.endswith("_count")] if fam else []
    return []


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@needs_root
def test_two_python_servers_are_two_services_on_metrics(live):
    s = live["servers"]
    plain = f"{_comm(s['d'].pid)}:{s['d'].port}"

    def named():
        got = {}
        for sample in _http_samples(live["metrics"]):
            labels = sample.labels
            got.setdefault(labels["service_name"], set()).add(
                (labels["service_instance_id"], labels["url_scheme"])
            )
        # both processes of checkout: the traffic thread reaches them one after the other
        return got if {"checkout", "billing", plain} <= set(got) and len(got["checkout"]) == 2 else None

    got = _wait(named, what="the four servers on /metrics")
    # two processes of one service: one service, two instances; the others one each
    assert got["checkout"] == {(str(s["a"].pid), "http"), (str(s["b"].pid), "http")}
    assert got["billing"] == {(str(s["c"].pid), "http")}
    assert got[plain] == {(str(s["d"].pid), "https")}
    ours = {str(server.pid) for server in s.values()}
    merged = {instance for name in ("python", "python3") for instance, _ in got.get(name, ())}
    assert not merged & ours  # none of them merged by comm (other tests' servers may run beside)


@needs_root
def test_snapshot_json_and_console_rows_use_the_same_names(live):
    from obs_tui.config import load
    from obs_tui.pipeline import make_engine
    from obs_tui.snapshot import frame_to_json
    from obs_tui.tui.app import ObsApp
    from obs_tui.tui.panes import RequestsPane
    from tests.fake_frames import FakeEngine
    from tests.test_tui import started, table_of

    s = live["servers"]
    plain = f"{_comm(s['d'].pid)}:{s['d'].port}"
    engine = make_engine(load(str(live["config"])), False, with_slos=False)
    try:
        engine.tick()

        def ours():
            frame = engine.tick()
            mine = {svc.pid: svc for svc in frame.red.services if svc.pid in {x.pid for x in s.values()}}
            # since the probe attached (a tick's window may fall between two of a server's requests)
            return frame if len(mine) == 4 and all(v.routes_total for v in mine.values()) else None

        frame = _wait(ours, timeout=60, what="requests from the four servers")
    finally:
        engine.close()
    doc = frame_to_json(frame)
    names = {svc["pid"]: (svc["service_name"], svc["service_instance_id"]) for svc in doc["red"]["services"]}
    assert names[s["a"].pid] == ("checkout", str(s["a"].pid))
    assert names[s["b"].pid] == ("checkout", str(s["b"].pid))
    assert names[s["c"].pid] == ("billing", str(s["c"].pid))
    assert names[s["d"].pid] == (plain, str(s["d"].pid))
    assert all(svc["comm"] for svc in doc["red"]["services"])  # schema 1 keeps comm as it was

    async def rows():
        app = ObsApp(lambda: FakeEngine(lambda i: frame))
        async with app.run_test(size=(160, 48)) as pilot:
            await started(app, pilot, frames=1, frame_fn=lambda i: frame)
            table = table_of(app, RequestsPane)
            shown = {key: table.row(key)[0] for key in table.keys}
            await pilot.press("q")
        return {k: v[0] if isinstance(v, tuple) else str(v) for k, v in shown.items()}

    shown = asyncio.run(rows())
    assert shown[s["a"].pid] == shown[s["b"].pid] == "checkout"
    assert shown[s["c"].pid] == "billing" and shown[s["d"].pid] == plain


@needs_root
def test_promtool_checks_the_agents_metrics(live):
    _wait(lambda: _http_samples(live["metrics"]), what="requests on /metrics")
    text = _get(live["metrics"])
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stdout + result.stderr


@needs_root
def test_openmetrics_declares_units_and_the_energy_model(live):
    def energy_shown():  # the first frames have no per-process energy yet (nothing measured)
        text = _get(live["metrics"], "application/openmetrics-text; version=1.0.0")
        return text if "obs_process_cpu_joules_total{" in text and _http_samples(live["metrics"]) else None

    text = _wait(energy_shown, what="per-process energy on /metrics")
    assert "# UNIT http_server_request_duration_seconds seconds" in text
    assert "# UNIT obs_host_energy_joules joules" in text
    assert "# UNIT obs_host_power_watts watts" in text
    fams = {f.name: f for f in om_families(text)}
    # the total and its parts are different metrics: neither sum counts anything twice
    (host,) = fams["obs_host_power_watts"].samples
    zones = fams["obs_host_zone_power_watts"].samples
    assert "zone" not in host.labels and zones
    assert sum(z.value for z in zones) == pytest.approx(host.value, abs=0.1 * len(zones) + 1e-9)
    assert {s.labels["zone"] for s in fams["obs_host_zone_energy_joules"].samples} == {
        z.labels["zone"] for z in zones
    }
    assert fams["obs_host_energy_joules"].type == "counter"
    procs = fams["obs_process_cpu_joules"].samples
    assert procs and all(set(s.labels) == {"pid", "comm", "exe", "container_id"} for s in procs)
    assert not any(s.labels["comm"].startswith(("kworker/", "ksoftirqd/")) for s in procs)
    # root-owned servers, read while the agent was still root: their executables are known
    servers_pids = {str(x.pid) for x in live["servers"].values()}
    assert all(s.labels["exe"] for s in procs if s.labels["pid"] in servers_pids)
    for name in fams:
        assert not re.search(r"_(g|kwh|ms|kb|mb)(_|$)", name), name  # no abbreviated units
    from obs_tui.exporter import METRICS

    exposed = {f.name + ("_total" if f.type == "counter" else "") for f in fams.values()}
    assert exposed == set(METRICS)  # the list the module's docstring promises is what leaves


def _substitute(expr: str) -> str:
    for var, value in (
        ("$__rate_interval", "1m"),
        ("$__range", "5m"),
        ("$job", ".+"),
        ("$instance", ".+"),
        ("$service", ".+"),
    ):
        expr = expr.replace(var, value)
    return expr


@needs_root
def test_every_dashboard_query_returns_data(live):
    base = live["prometheus"]
    # first, the requests and two scrapes of every series; then each query, until all answer
    _wait(
        lambda: (
            _query(base, 'sum(http_server_request_duration_seconds_count{service_name="checkout"}) > 50')
            and _query(
                base,
                'sum(http_server_request_duration_seconds_count{service_name="checkout", '
                'http_response_status_code="503"}) > 2',
            )
        ),
        what="Prometheus scraping the agent's requests and errors",
    )
    queries = [(p["title"], _substitute(t["expr"])) for p in _panels() for t in p["targets"]]
    assert len(queries) >= 15

    def all_answer():
        return all(_query(base, expr) for _, expr in queries)

    with contextlib.suppress(AssertionError):
        _wait(all_answer, timeout=60)
    empty = [(title, expr) for title, expr in queries if not _query(base, expr)]
    assert empty == []
    # the template variables: label_values(metric, label) is the series API's label values
    for variable in _dashboard()["templating"]["list"][1:]:
        metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]).groups()
        url = f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": _substitute(metric)}
        )
        assert json.loads(_get(url))["data"], variable["name"]
    burn = _query(base, 'obs:http_server_errors:burnrate5m{service_name="checkout"}')
    assert burn and float(burn[0]["value"][1]) > 1  # ~6 % 503s burn a 0.1 % budget ~60x


@needs_root
def test_read_only_power_reads_new_and_old_agents(live):
    from obs_tui.engine import Engine
    from obs_tui.pipeline import stages
    from obs_tui.sources.prometheus import Client
    from obs_tui.sources.readonly import PromPowerSource

    base = live["prometheus"]
    _wait(lambda: _query(base, "rate(obs_process_cpu_joules_total[1m])"), what="process energy rates")
    agent_zones = {r["metric"]["zone"] for r in _query(base, "obs_host_zone_power_watts")}
    for instance, zones in ((live["agent"], agent_zones), (live["old"], {"package-0", "dram-0"})):
        source = PromPowerSource(Client(base), refresh_s=60)
        engine = Engine(stages([source]), interval=1.0)
        try:
            engine.select_instance(instance)
            source.wait_fresh(10)
            power = engine.tick().power
        finally:
            engine.close()
        assert power.source == "obs-tui" and set(dict(power.zones)) == zones, instance
        assert power.host_watts > 0 and power.processes
    assert power.host_watts == 30.0  # the old agent's explicit total, not total + parts


def test_naming_reads_a_real_process_and_keeps_its_name_after_it_exits(tmp_path):
    from obs_tui.sources.service_identity import ServiceNaming, read_env_name

    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={**os.environ, "OTEL_SERVICE_NAME": "ledger"},
    )
    try:
        # until the child has exec'd, /proc/PID/environ is still the parent's (no name)
        deadline = time.monotonic() + 10
        while b"time.sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the child never exec'd"
            time.sleep(0.01)
        naming = ServiceNaming(rules_from_config([{"name": "by-rule", "port": 7000}]))
        naming.prime([proc.pid])
        assert read_env_name(proc.pid) == "ledger" and read_env_name(os.getpid()) == ""
        assert naming.name(proc.pid, "python3", "python3 -c ...", (7000,)) == "ledger"
    finally:
        proc.kill()
        proc.wait()
    assert read_env_name(proc.pid) is None  # gone: unreadable now
    # its last requests keep the name read while it lived
    assert naming.name(proc.pid, "python3", "python3 -c ...", (7000,)) == "ledger"
    assert ServiceNaming().name(proc.pid, "python3", "", (7000,)) == "python3:7000"
