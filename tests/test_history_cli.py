"""The history on the command line and in the console's assembly: bad input is one line,
a console finding an agent recording reads its store instead of recording twice."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from obs_tui.config import ConfigError, parse
from obs_tui.engine import Engine
from obs_tui.history.recorder import Recorder
from obs_tui.history.store import Store
from obs_tui.history.wiring import attach
from obs_tui.pipeline import stages
from obs_tui.sources.procs import ProcsSource
from tests import fake_frames
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_history_store import record


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["snapshot", "--json", "--at", "yesterday"], ["--at", "14:05", "-10m"]),
        (["snapshot", "--json", "--at", "25:99"], ["--at", "not a time of day"]),
        (["export", "--from", "-10x"], ["--from", "cannot read time"]),
        (["export", "--from", "-5m", "--to", "-10m"], ["--to", "must be after --from"]),
        (["export"], ["--from"]),
    ],
)
def test_bad_times_are_one_line(argv, needles, tmp_path):
    assert_one_line_error(run_cli(*argv, "--history", str(tmp_path)), *needles)


def test_no_store_is_one_line(tmp_path):
    assert_one_line_error(
        run_cli("snapshot", "--json", "--at", "-10m", "--history", str(tmp_path)),
        "no history recorded here",
        str(tmp_path),
    )


def test_nothing_recorded_then_says_what_is_held(tmp_path):
    record(tmp_path, 5).close()
    out = run_cli("export", "--from", "-10m", "--history", str(tmp_path))
    assert out.returncode == 1 and out.stdout == ""
    assert "no frames recorded between" in out.stderr and "history holds 2023-11-14" in out.stderr


def test_snapshot_at_and_export_read_a_store(tmp_path):
    record(tmp_path, 30).close()
    out = run_cli(
        "snapshot",
        "--json",
        "--at",
        "2023-11-14T22:13:25+00:00",
        "--duration",
        "5",
        "--history",
        str(tmp_path),
    )
    doc = json.loads(out.stdout)
    assert doc["schema"] == 1 and doc["window"]["frames"] == 5 and doc["duration_s"] == 5
    # frame i is taken at T0 + i and measured the second before: 6..10 cover 22:13:25..30
    want = sum(fake_frames.red(i).services[0].requests for i in range(6, 11))
    assert doc["red"]["services"][0]["requests"] == want
    text = run_cli(
        "export", "--from", "2023-11-14T22:13:20Z", "--to", "2023-11-14T22:13:29Z", "--history", str(tmp_path)
    ).stdout
    assert text.endswith("# EOF\n") and 'obs_host_power_watts{source="estimate"}' in text


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[history]\nmax_age_days = 0\n", "history.max_age_days"),
        ("[history]\nmax_size_mb = -1\n", "history.max_size_mb"),
        ("[history]\ndir = 3\n", "history.dir"),
    ],
)
def test_bad_history_settings(text, needle):
    with pytest.raises(ConfigError, match=needle):
        parse(text)


def test_history_dir_from_config_and_flag(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text(f'[history]\ndir = "{tmp_path / "from-config"}"\n')
    out = run_cli("doctor", "--json", "--config", str(conf))
    assert json.loads(out.stdout)["history"]["path"] == str(tmp_path / "from-config" / "history.db")
    out = run_cli("doctor", "--json", "--config", str(conf), "--history", str(tmp_path / "flag"))
    assert json.loads(out.stdout)["history"]["path"] == str(tmp_path / "flag" / "history.db")


def test_doctor_shows_the_store(tmp_path):
    record(tmp_path, 30).close()
    record(tmp_path, 10, start=fake_frames.T0 + 600).close()
    out = run_cli("doctor", "--history", str(tmp_path))
    text = out.stdout[out.stdout.index("history  ") :]
    assert "40 frames" in text and "oldest 2023-11-14 22:13:20" in text and "1 gap(s)" in text
    assert "no one is recording now" in text
    info = json.loads(run_cli("doctor", "--json", "--history", str(tmp_path)).stdout)["history"]
    assert info["frames"] == 40 and len(info["gaps"]) == 1 and info["size_bytes"] > 0


def _engine():
    return Engine(stages([ProcsSource()]), interval=1.0)


def test_a_console_records_alone_and_reads_an_agent_that_records(tmp_path):
    config = parse(f'[history]\ndir = "{tmp_path}"\n')
    console = _engine()
    attach(console, config, "console", lambda line: None)  # nobody else: the console records
    assert console.history.recording and any(isinstance(s, Recorder) for s in console.sinks)
    console.tick()
    console.close()

    agent = Store(tmp_path, writer=True)
    agent.heartbeat("agent", time.time())
    console = _engine()
    attach(console, config, "console", lambda line: None)
    assert not any(isinstance(s, Recorder) for s in console.sinks), "recorded twice"
    assert console.history is not None and "reading the agent's" in console.history_note
    console.close()
    agent.close()


def test_a_console_without_a_usable_store_goes_on_and_says_why(tmp_path):
    (tmp_path / "file").write_text("")
    config = parse(f'[history]\ndir = "{tmp_path / "file" / "sub"}"\n')
    console = _engine()
    notes = []
    attach(console, config, "console", notes.append)
    assert console.history is None and notes and "history off" in console.history_note
    console.close()


def test_no_history_flag_leaves_the_store_alone(tmp_path):
    from obs_tui.cli import build_parser

    args = build_parser().parse_args(["--no-history", "--history", str(tmp_path)])
    assert args.no_history and args.history == str(tmp_path)


DROPPING_CONSOLE = """
import os, sys
from obs_tui.cli import make_engine_and_drop
from obs_tui.config import parse
from obs_tui.privileges import limit
from obs_tui.history.recorder import Recorder
limit()
engine = make_engine_and_drop(parse('[history]\\ndir = "%s"\\n'), True, history="console")
for _ in range(3):
    engine.tick()
recorder = next(s for s in engine.sinks if isinstance(s, Recorder))
recorder.flush()  # written as nobody, through the descriptor opened as root
print(os.geteuid(), recorder.error or "written", flush=True)
engine.close()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root")
def test_the_console_opens_the_store_as_root_and_records_after_the_drop(tmp_path):
    from tests.test_privileges import NOBODY, REPO

    reach = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import obs_tui"],
        cwd=REPO,
        capture_output=True,
    )
    if reach.returncode != 0:
        pytest.skip(f"user nobody cannot read this checkout ({REPO})")
    history = tmp_path / "history"
    out = subprocess.run(
        [sys.executable, "-c", DROPPING_CONSOLE % history],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        env={**os.environ, "SUDO_UID": ""},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(NOBODY.pw_uid), "written"]
    info = os.stat(history / "history.db")
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600)  # root's, and private
    store = Store(history)
    assert len(list(store.frames(0, 2e9))) == 3
    store.close()
