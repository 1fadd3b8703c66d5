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
    text = """
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
"""
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

KNOWN = [
    "interval",
    "theme",
    "slo_files",
    "keep_root",
    "prometheus",
    "power",
    "carbon",
    "red",
    "slo",
    "url",
    "timeout_s",
    "bearer_token_file",
    "powercap_root",
    "grid_g_per_kwh",
    "region",
    "pue",
    "routes",
    "max_children",
    "name",
    "objective",
    "period",
    "error_query",
    "total_query",
]
keys = st.one_of(st.sampled_from(KNOWN), st.text(max_size=8))
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["/users/{id}", "dark", "30d", "users"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_value(value) -> str:
    """Inline TOML for a value (hypothesis' floats include nan and inf, which TOML spells so)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


documents = st.one_of(
    st.dictionaries(keys, values, max_size=6).map(
        lambda doc: "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in doc.items())
    ),
    st.text(max_size=80),
    st.sampled_from(
        [
            "[red]\nmax_children = 5\nroutes = ['/a', 7]",
            "interval = nan",
            "interval = 1e999",
            "[[slo]]\nname='x'\nobjective=1.5\nerror_query='a'\ntotal_query='b'",
            "[red]\n[red]",
            "keep_root = 1",
            "interval = 99999999999999999999999",
        ]
    ),
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


# ---- settings that used to be accepted: each one line, exit 2, via load() and the real CLI ----

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def bad_settings(tmp):
    """(config text, what the one line must say). Files named here are made in `tmp`."""
    (tmp / "a-directory").mkdir(exist_ok=True)
    (tmp / "token").write_text("t0ken\n")
    url = 'url = "http://127.0.0.1:9"\n'
    return [
        ("interval = 1e-9", ["key 'interval'", "from 0.1 to 300 seconds", "got 1e-09"]),
        ("interval = 3600", ["key 'interval'", "from 0.1 to 300 seconds"]),
        ("interval = -1", ["key 'interval'", "from 0.1"]),
        ("[red]\nmax_children = -5", ["key 'red.max_children'", "from 1 to 10000", "got -5"]),
        ("[red]\nmax_children = 0", ["key 'red.max_children'"]),
        ("[exporter]\ntop_processes = 100000000", ["key 'exporter.top_processes'", "got 100000000"]),
        ("[exporter]\ntop_processes = 0", ["key 'exporter.top_processes'"]),
        (
            '[exporter]\nlisten = "127.0.0.1:70000"',
            ["key 'exporter.listen'", "ADDR:PORT", "'127.0.0.1:70000'"],
        ),
        ('[exporter]\nlisten = "9464"', ["key 'exporter.listen'", "ADDR:PORT"]),
        ("[prometheus]\ntimeout_s = -2", ["key 'prometheus.timeout_s'", "from 0.1 to 300 seconds"]),
        ("[prometheus]\ntimeout_s = 1e-9", ["key 'prometheus.timeout_s'"]),
        ("[prometheus]\nrefresh_s = 1e-9", ["key 'prometheus.refresh_s'", "from 0.1 to 86400"]),
        ("[power]\nmin_watts_per_vcpu = -1", ["key 'power.min_watts_per_vcpu'", "from 0 to 1000 watts"]),
        ("[power]\nmemory_watts_per_gb = 1e6", ["key 'power.memory_watts_per_gb'", "from 0 to 100 watts"]),
        ("[carbon]\npue = 0.5", ["key 'carbon.pue'", "from 1 to 5"]),
        ("[carbon]\ngrid_g_per_kwh = -400", ["key 'carbon.grid_g_per_kwh'", "from 0 to 5000"]),
        ("[carbon]\nlifespan_years = 1e-300", ["key 'carbon.lifespan_years'", "from 0.5 to 50 years"]),
        ("slo_files = [1]", ["key 'slo_files'", "file paths", "got 1"]),
        ('[prometheus]\nurl = "ftp://x"', ["key 'prometheus.url'", "http(s)://host[:port]", "'ftp://x'"]),
        (
            '[prometheus]\nurl = "http://obs:hunter2@127.0.0.1:9090"',
            ["key 'prometheus.url'", "must not carry a password", "basic_auth_password_file"],
        ),
        ('[prometheus]\nurl = "http://127.0.0.1:99999"', ["key 'prometheus.url'", "Port out of range"]),
        (
            '[prometheus]\nurl = "http://obs:hunter2@[::1"',
            ["key 'prometheus.url'", "must not carry a password"],
        ),
        (
            '[prometheus]\nurl = "obs:hunter2@prom:9090"',
            ["key 'prometheus.url'", "must not carry a password"],
        ),
        (
            f'[prometheus]\n{url}bearer_token_file = "{tmp}/missing"',
            ["key 'prometheus.bearer_token_file'", f"{tmp}/missing: no such file"],
        ),
        (
            f'[prometheus]\n{url}bearer_token_file = "{tmp}/a-directory"',
            ["key 'prometheus.bearer_token_file'", "a-directory: is a directory"],
        ),
        (
            f'[prometheus]\nbearer_token_file = "{tmp}/token"\nbasic_auth_user = "u"',
            ["prometheus.bearer_token_file", "prometheus.basic_auth_user", "not both"],
        ),
        (
            f'[prometheus]\nbasic_auth_password_file = "{tmp}/token"',
            ["key 'prometheus.basic_auth_password_file' needs 'prometheus.basic_auth_user'"],
        ),
        (f'[prometheus]\n{url}ca_file = "{tmp}/missing.pem"', ["key 'prometheus.ca_file'", "no such file"]),
        ('[prometheus]\nkey_file = "/k"', ["key 'prometheus.key_file' needs 'prometheus.cert_file'"]),
        (
            f'[exporter]\ntls_cert_file = "{tmp}/a-directory"',
            ["key 'exporter.tls_cert_file'", "is a directory"],
        ),
        (
            f'[exporter]\nbasic_auth_user = "p"\nbasic_auth_password_file = "{tmp}/gone"',
            ["key 'exporter.basic_auth_password_file'", "no such file"],
        ),
    ]


def _write(tmp, i, text):
    path = tmp / f"bad-{i}.toml"
    path.write_text(text + "\n")
    return path


def test_bad_settings_are_config_errors_from_load(tmp_path):
    for i, (text, needles) in enumerate(bad_settings(tmp_path)):
        path = _write(tmp_path, i, text)
        with pytest.raises(config.ConfigError) as err:
            config.load(str(path))
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        assert "hunter2" not in message
        for needle in needles:
            assert needle in message, (text, message)


@pytest.mark.parametrize("command", [["snapshot", "--json"], ["agent"]])
def test_bad_settings_exit_2_with_one_line_from_the_cli(tmp_path, command):
    from tests.test_cli import assert_one_line_error

    cases = bad_settings(tmp_path)
    if command == ["agent"]:
        cases = cases[::4]  # the same check runs for every command: a sample is enough here
    for i, (text, needles) in enumerate(cases):
        path = _write(tmp_path, i, text)
        result = subprocess.run(
            [sys.executable, "-m", "obs_tui", "--config", str(path), *command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert_one_line_error(result, f"obs-tui: config: {path}: ", *needles)
        assert "hunter2" not in result.stderr


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="root reads any file: only root can make this one unreadable to a user and test as that user",
)
def test_an_unreadable_secret_file_is_a_config_error_as_that_user():
    import shutil
    import tempfile

    from tests.test_cli import assert_one_line_error

    home = Path(tempfile.mkdtemp(prefix="obs-tui-secret-"))  # pytest's tmp is root's only
    try:
        home.chmod(0o755)
        secret, path = home / "secret", home / "c.toml"
        secret.write_text("x")
        secret.chmod(0o600)  # root's: what a user running obs-tui cannot read
        path.write_text(f'[prometheus]\nbearer_token_file = "{secret}"\n')
        path.chmod(0o644)
        as_nobody = (
            "import os, runpy, sys; os.setgroups([]); os.setgid(65534); os.setuid(65534); "
            "sys.argv = ['obs-tui'] + sys.argv[1:]; runpy.run_module('obs_tui', run_name='__main__')"
        )
        result = subprocess.run(
            [sys.executable, "-c", as_nobody, "--config", str(path), "doctor"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert_one_line_error(result, f"key 'prometheus.bearer_token_file': {secret}: permission denied")
    finally:
        shutil.rmtree(home)


def test_good_secret_files_and_urls_load(tmp_path):
    (tmp_path / "token").write_text("t0ken\n")
    path = tmp_path / "c.toml"
    path.write_text(
        f'interval = 0.1\n[prometheus]\nurl = "https://prom.example:9090/prefix"\n'
        f'bearer_token_file = "{tmp_path}/token"\ntimeout_s = 300\n'
    )
    c = config.load(str(path))
    assert c.interval == 0.1 and c.prometheus["bearer_token_file"] == f"{tmp_path}/token"
