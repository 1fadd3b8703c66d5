"""`obs-tui config --default`: every key of the schema with its default, accepted as it is."""

import os
import re
import subprocess
import sys

from obs_tui import config
from obs_tui.config_template import NOTES, default_config, every_key


def run_cli(*argv, env=None):
    return subprocess.run(
        [sys.executable, "-m", "obs_tui", *argv], capture_output=True, text=True, timeout=60, env=env
    )


def _uncommented(text: str) -> str:
    """The text with every commented-out key and [[table]] line switched on."""
    return re.sub(r"(?m)^# (\[\[[a-z_.]+\]\]|[a-z_]+ = .*)$", r"\1", text)


def test_round_trip_from_the_real_cli(tmp_path):
    result = run_cli("config", "--default")
    assert result.returncode == 0 and result.stderr == ""
    path = tmp_path / "config.toml"
    path.write_text(result.stdout)
    parsed = config.parse(result.stdout, str(path))
    defaults = config.parse("")
    # equal to the defaults in every key (the path is where it was read from)
    assert {**vars(parsed), "path": None} == {**vars(defaults), "path": None}
    # and the console's commands accept it as their config file
    assert run_cli("--config", str(path), "doctor", "--json").returncode == 0


def _shown_keys(text: str) -> set[str]:
    """Dotted keys as the text shows them (a key belongs to the [table] or [[array]] above
    it; an array's keys as `name[].key`), commented out or not."""
    shown, section = set(), ""
    for line in text.splitlines():
        header = re.fullmatch(r"(?:# )?\[(\[?)([a-z_.]+)\]?\]", line)
        if header:
            shown.add(header.group(2))
            section = header.group(2) + ("[]" if header.group(1) else "")
            continue
        key = re.fullmatch(r"(?:# )?([a-z_]+) = .*", line)
        if key:
            shown.add(f"{section}.{key.group(1)}" if section else key.group(1))
    return shown


def test_every_key_is_shown_with_a_note():
    assert _shown_keys(default_config()) == set(every_key())
    missing = [key for key in every_key() if not NOTES.get(key)]
    assert not missing, f"add a line for {missing} to NOTES in obs_tui/config_template.py"
    stale = [key for key in NOTES if key not in every_key()]
    assert not stale, f"NOTES describes keys the schema no longer has: {stale}"


def test_defaults_are_the_schema_defaults():
    text = default_config()
    assert "interval = 1.0\n" in text and 'theme = "dark"\n' in text
    assert 'listen = "127.0.0.1:9464"\n' in text and "memory_watts_per_gb = 0.392\n" in text
    # a key that is not set by default is commented out, never given a value that would
    # change what obs-tui does
    assert re.search(r"(?m)^# grid_g_per_kwh = ", text) and not re.search(r"(?m)^grid_g_per_kwh", text)


def test_the_commented_examples_are_valid_too():
    """Switching every commented-out key and table on gives a config that parses: the
    examples are right, and an [[slo]] example is a working SLO definition."""
    on = _uncommented(default_config())
    parsed = config.parse(on, "<uncommented>")
    assert parsed.carbon["grid_g_per_kwh"] == 400 and parsed.slo[0]["objective"] == 0.999


def test_config_without_options_names_the_file_in_use(tmp_path):
    home = tmp_path / "xdg"
    (home / "obs-tui").mkdir(parents=True)
    (home / "obs-tui" / "config.toml").write_text("interval = 2.0\n")
    env = {k: v for k, v in os.environ.items() if k != "OBS_TUI_CONFIG"}
    result = run_cli("config", env={**env, "XDG_CONFIG_HOME": str(home)})
    assert result.returncode == 0
    assert f"in use: {home}/obs-tui/config.toml" in result.stdout


def test_a_broken_config_file_does_not_hide_the_defaults(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("interval = [")
    result = run_cli("config", "--default", env={**os.environ, "OBS_TUI_CONFIG": str(broken)})
    assert result.returncode == 0 and "interval = 1.0" in result.stdout


def test_a_true_or_false_key_takes_true_and_false_and_nothing_else():
    """keep_root = true was refused as 'must be true or false' (a bool was taken for a number)."""
    assert config.parse("keep_root = true").keep_root is True
    assert config.parse("keep_root = false").keep_root is False
    import pytest

    with pytest.raises(config.ConfigError, match="keep_root' must be true or false"):
        config.parse("keep_root = 1")
