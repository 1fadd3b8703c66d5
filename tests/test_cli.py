"""Every bad-input case: one line naming the flag/file/key and the problem, exit 2, no traceback."""

import json
import os
import subprocess
import sys

import pytest

from obs_tui.cli import main


def run_cli(*argv, env=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "obs_tui", *argv], capture_output=True, text=True, env=full_env, timeout=60
    )


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["--interval", "abc"], ["--interval", "number of seconds", "abc"]),
        (["--interval", "0"], ["--interval", "from 0.1 to 300 seconds", "got 0"]),
        (["--interval", "-1"], ["--interval"]),
        (["snapshot", "--json", "--csv", "slo"], ["--json", "--csv", "choose one"]),
        (["snapshot", "--csv", "routes"], ["--csv", "invalid choice", "routes"]),
        (["snapshot", "--count", "0"], ["--count", "at least 1"]),
        (["snapshot", "--count", "2", "--duration", "3"], ["--duration", "--count"]),
        (["--interval", "1e-9"], ["--interval", "from 0.1 to 300 seconds", "got 1e-09"]),
        (["--interval", "nan"], ["--interval", "got nan"]),
        (["--interval", "3600"], ["--interval", "from 0.1 to 300 seconds"]),
        (["snapshot", "--json", "--duration", "0"], ["--duration", "from 0.1 to 86400 seconds"]),
        (["demo", "--rps", "1e9"], ["--rps", "from 0.1 to 1000 requests per second"]),
        (["--prometheus", "ftp://x", "snapshot", "--json"], ["--prometheus", "http(s)://", "'ftp://x'"]),
        (
            ["--prometheus", "http://obs:hunter2@127.0.0.1:9090", "agent"],
            ["--prometheus", "must not carry a password"],
        ),
        (["--prometheus", "http://127.0.0.1:99999", "doctor"], ["--prometheus", "Port out of range"]),
        (["snapshot", "--json", "--duration", "x"], ["--duration"]),
        (["frobnicate"], ["invalid choice", "frobnicate"]),
        (["doctor", "--what"], ["--what"]),
    ],
)
def test_bad_flags(argv, needles):
    assert_one_line_error(run_cli(*argv), *needles)


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.toml"
    assert_one_line_error(run_cli("--config", str(missing), "doctor"), str(missing), "not found")


def test_missing_config_from_env(tmp_path):
    missing = tmp_path / "env.toml"
    assert_one_line_error(
        run_cli("doctor", env={"OBS_TUI_CONFIG": str(missing)}), str(missing), "OBS_TUI_CONFIG"
    )


@pytest.mark.parametrize(
    "text, needles",
    [
        ("interval = [", ["not valid TOML"]),
        ("colour = 1", ["unknown key 'colour'"]),
        ("[power]\nroot = '/x'", ["unknown key 'power.root'"]),
        ("interval = 'fast'", ["key 'interval'", "a number", "'fast'"]),
        ("interval = true", ["key 'interval'", "a number"]),
        ("theme = 3", ["key 'theme'", "a string"]),
        ("prometheus = 'x'", ["key 'prometheus'", "table"]),
        ("[red]\nroutes = '/a'", ["key 'red.routes'", "a list"]),
        ("[red]\nroutes = ['users']", ["red.routes", "start"]),
        (
            "[[slo]]\nname = 'a'\nobjective = 99.9\nerror_query='e'\ntotal_query='t'",
            ["slo[0].objective", "ratio"],
        ),
        ("[[slo]]\nname = 'a'", ["missing required key", "slo[0].objective"]),
        ("[carbon]\npue = 'one'", ["carbon.pue", "a number"]),
        (
            "[carbon]\nregion = 'aws:eu-west-7'",
            ["key 'carbon.region'", "unknown region", "did you mean", "'aws:eu-west-1'"],
        ),
    ],
)
def test_bad_config(tmp_path, text, needles):
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert_one_line_error(run_cli("--config", str(path), "doctor"), str(path), *needles)


def test_unreadable_config_is_one_line(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe\x00")
    assert_one_line_error(run_cli("--config", str(path), "doctor"), str(path))


def test_unknown_theme():
    assert_one_line_error(run_cli("--theme", "purple"), "purple", "dark")


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("obs-tui ")


def test_options_after_subcommand_and_before(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("interval = 2.5\n")
    for argv in (["--config", str(path), "doctor", "--json"], ["doctor", "--json", "--config", str(path)]):
        result = run_cli(*argv)
        assert result.returncode == 0, result.stderr
        json.loads(result.stdout)


def test_config_search_order(tmp_path, monkeypatch):
    """--config beats $OBS_TUI_CONFIG, which beats ~/.config/obs-tui/config.toml."""
    from obs_tui.cli import build_parser, resolve_config

    home = tmp_path / "home"
    (home / ".config" / "obs-tui").mkdir(parents=True)
    (home / ".config" / "obs-tui" / "config.toml").write_text("interval = 3.0\n")
    env_file = tmp_path / "env.toml"
    env_file.write_text("interval = 2.0\n")
    flag_file = tmp_path / "flag.toml"
    flag_file.write_text("interval = 1.5\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("OBS_TUI_CONFIG", raising=False)
    parse = build_parser().parse_args
    assert resolve_config(parse(["doctor"])).interval == 3.0
    monkeypatch.setenv("OBS_TUI_CONFIG", str(env_file))
    assert resolve_config(parse(["doctor"])).interval == 2.0
    assert resolve_config(parse(["--config", str(flag_file), "doctor"])).interval == 1.5
    assert resolve_config(parse(["--config", str(flag_file), "--interval", "4", "doctor"])).interval == 4.0


def test_main_returns_code_without_exiting():
    assert main(["--interval", "nope"]) == 2


def test_unknown_theme_in_config_names_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('theme = "purple"\n')
    assert_one_line_error(run_cli("--config", str(path)), str(path), "theme", "purple")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
@pytest.mark.parametrize(
    "argv", [["doctor"], ["doctor", "--json"], ["snapshot", "--json", "--duration", "0.2"]]
)
def test_as_an_unprivileged_user_no_traceback(argv, tmp_path):
    """Without root the probes are off with a reason, and everything else works."""
    import shutil

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if shutil.which("runuser") is None:
        pytest.skip("runuser not installed")
    as_nobody = ["runuser", "-u", "nobody", "--"]
    reach = subprocess.run(
        as_nobody + [sys.executable, "-c", "import obs_tui"], cwd=repo, capture_output=True
    )
    if reach.returncode != 0:
        pytest.skip(f"user nobody cannot read this checkout ({repo})")
    tmp_path.chmod(0o777)
    result = subprocess.run(
        as_nobody + [sys.executable, "-m", "obs_tui", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=repo,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if argv[0] == "snapshot":
        doc = json.loads(result.stdout)
        assert not doc["capabilities"]["ebpf"]["ok"] and "root" in doc["capabilities"]["ebpf"]["reason"]
        assert doc["sources"]["red"]["mode"] == "off" and doc["sources"]["procs"]["mode"] == "live"
    elif "--json" not in argv:
        assert "FAIL  privileges" in result.stdout
