from obs_tui import config


def test_defaults_match_the_documented_contract():
    c = config.parse("")
    assert c.interval == 1.0 and c.theme == "dark"
    assert c.power["powercap_root"] == "/sys/class/powercap"
    assert c.red["max_children"] == 10
    # not set is not a value: the region, the cloud's PUE and the labelled default show through
    assert "pue" not in c.carbon and "grid_g_per_kwh" not in c.carbon and c.carbon["region"] == ""
    assert c.prometheus["timeout_s"] == 5


def test_full_design_example_parses():
    text = '''
interval = 1.0
theme = "dark"
slo_files = ["/etc/obs-tui/slos/*.yaml"]
[prometheus]
url = "http://127.0.0.1:9090"
bearer_token_file = "/etc/obs-tui/token"
ca_file = ""
timeout_s = 5
[power]
powercap_root = "/sys/class/powercap"
[carbon]
grid_g_per_kwh = 400
pue = 1.0
[red]
routes = ["/users/{id}"]
[[slo]]
name = "checkout-availability"
objective = 0.999
period = "30d"
error_query = 'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))'
total_query = 'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))'
'''
    c = config.parse(text, "/etc/obs-tui/config.toml")
    assert c.prometheus["url"] == "http://127.0.0.1:9090"
    assert c.red["routes"] == ["/users/{id}"]
    assert c.slo[0]["name"] == "checkout-availability" and c.slo[0]["objective"] == 0.999
    assert c.interval == 1.0 and isinstance(c.carbon["grid_g_per_kwh"], float)


# ---- random documents: a Config or one ConfigError line, never another exception ------------

import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from obs_tui.cli import main  # noqa: E402

KNOWN = ["interval", "theme", "slo_files", "keep_root", "prometheus", "power", "carbon", "red", "slo",
         "url", "timeout_s", "bearer_token_file", "powercap_root", "grid_g_per_kwh", "region", "pue",
         "routes", "max_children", "name", "objective", "period", "error_query", "total_query"]
keys = st.one_of(st.sampled_from(KNOWN), st.text(max_size=8))
scalars = st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1), st.floats(), st.booleans(),
                    st.text(max_size=12), st.sampled_from(["/users/{id}", "dark", "30d", "users"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)),
                      max_leaves=12)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_value(value) -> str:
    """Inline TOML for a value (hypothesis' floats include nan and inf, which TOML spells so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


documents = st.one_of(
    st.dictionaries(keys, values, max_size=6).map(
        lambda doc: "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items())),
    st.text(max_size=80),
    st.sampled_from(["[red]\nmax_children = 5\nroutes = ['/a', 7]", "interval = nan", "interval = 1e999",
                     "[[slo]]\nname='x'\nobjective=1.5\nerror_query='a'\ntotal_query='b'", "[red]\n[red]",
                     "keep_root = 1", "interval = 99999999999999999999999"]),
)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_random_documents_give_a_config_or_a_config_error(text):
    try:
        c = config.parse(text, "/etc/obs-tui/config.toml")
    except config.ConfigError as exc:
        message = str(exc)
        assert message.startswith("/etc/obs-tui/config.toml: ") and "\n" not in message.strip("\n")
        return
    assert math.isfinite(c.interval) and c.interval > 0 and isinstance(c.theme, str)
    assert isinstance(c.keep_root, bool) and all(isinstance(r, str) for r in c.red["routes"])
    # carbon's pue and grid_g_per_kwh may be unset (absent), and pue may name a cloud preset
    numbers = [c.carbon.get("pue"), c.carbon.get("grid_g_per_kwh"), c.prometheus["timeout_s"]]
    assert all(math.isfinite(v) for v in numbers if isinstance(v, float))


@settings(max_examples=60, deadline=None)
@given(documents)
def test_cli_exits_2_with_one_line_for_a_bad_config(tmp_path_factory, text):
    try:
        config.parse(text)
        return  # a good config would start the tool; the property is about bad ones
    except config.ConfigError:
        pass
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--config", str(path), "doctor"])
    lines = err.getvalue().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("obs-tui: config: "), lines
