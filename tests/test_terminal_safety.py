"""The terminal is safe: the real console on a pty, its raw output captured and searched.

- A process named with escape sequences (prctl(PR_SET_NAME)), serving real requests so it is
  in every pane, and an SLO named the same way in the config: no pane, filter or detail
  screen writes those sequences; they arrive as U+FFFD.
- Every way out (SIGTERM, SIGHUP, an exception) gives the terminal back, and a terminal that
  goes away without a SIGHUP ends the console (it used to spin on EOF with its probes loaded).
- NO_COLOR and TERM=dumb draw no colour at all (NO_COLOR used to be black on black); the
  "too small" notice fits the smallest terminals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from obs_tui.text import REPLACEMENT
from obs_tui.tui.screens.too_small import MIN_HEIGHT, MIN_WIDTH, notice
from obs_tui.tui.terminal import BACKSTOP_S, HANGUP_EXIT
from tests import servers
from tests.pty_console import PtyConsole, sgr_sequences

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the console loads its probes as root")

# Set the window title to "pwn", then clear the screen: 12 bytes, inside comm's 15.
EVIL = "\x1b]0;pwn\x07\x1b[2J"
SAFE = REPLACEMENT.encode() + b"]0;pwn"  # what the start of the name must look like on screen


def evil_positions_are_safe(raw: bytes) -> int:
    """How many times the name was drawn; fails if any drawing of it is not printable."""
    assert b"\x1b]0;pwn" not in raw, "the window title was set from a process name"
    count, at = 0, raw.find(b"pwn")
    while at >= 0:
        assert raw[max(at - len(SAFE) + 3, 0) : at + 3] == SAFE, raw[max(at - 40, 0) : at + 40]
        count += 1
        at = raw.find(b"pwn", at + 3)
    return count


@as_root
def test_escape_sequences_in_host_strings_never_reach_the_terminal(tmp_path):
    config = tmp_path / "obs.toml"
    config.write_text(
        # an SLO name is config-derived text: the same sequences, written as TOML escapes
        '[prometheus]\nurl = "http://127.0.0.1:9"\ntimeout_s = 1\n'
        '[[slo]]\nname = "\\u001b]0;pwn\\u0007\\u001b[2J slo"\nobjective = 0.99\n'
        "error_query = 'sum(rate(x_total{code=~\"5..\"}[{{.window}}]))'\n"
        "total_query = 'sum(rate(x_total[{{.window}}]))'\n"
    )
    (tmp_path / "srv").mkdir()
    stop = threading.Event()
    with servers.python_server(tmp_path / "srv", name=EVIL) as evil:
        assert open(f"/proc/{evil.pid}/comm", "rb").read().startswith(b"\x1b]0;pwn")
        client = threading.Thread(target=servers._client, args=(evil.port, ["/a", "/b"], stop), daemon=True)
        client.start()
        try:
            with PtyConsole(["--config", str(config), "--interval", "0.5"], cols=200, rows=60) as con:
                con.wait_for(b"Carbon")
                con.wait_for(b"pwn", timeout=30)
                for pane in b"1234":
                    start = len(con.raw)
                    con.send(bytes([pane]), 0.5)  # maximise the pane
                    con.send(b"/", 0.3)
                    con.send(b"]0;p", 0.6)  # the filter (not "pwn", which the input echoes)
                    con.send(b"\r", 0.6)
                    con.send(b"\r", 1.5)  # its detail screen
                    shown = evil_positions_are_safe(con.raw[start:])
                    assert shown > 0, f"pane {chr(pane)} never drew the name"
                    con.send(b"\x1b", 0.5)  # back from the detail screen
                    con.send(b"\x1b", 0.5)  # clear the filter
                    con.send(bytes([pane]), 0.3)  # restore the layout
                con.send(b"q")
                assert con.wait_exit(15) == 0
                assert evil_positions_are_safe(con.raw) > 4
        finally:
            stop.set()
            client.join(5)


def test_one_line_errors_and_doctor_text_are_printable(tmp_path):
    """A config path or value with escape sequences comes back printable on stderr."""
    bad = tmp_path / "x\x1b]0;pwn\x07.toml"
    run = subprocess.run(
        [sys.executable, "-m", "obs_tui", "--config", str(bad), "doctor"], capture_output=True, timeout=60
    )
    assert run.returncode == 2 and b"pwn" in run.stderr
    assert b"\x1b" not in run.stderr and b"\x07" not in run.stderr
    bad.write_text('[prometheus]\nurl = "http://127.0.0.1:9/\\u001b]0;pwn\\u0007"\n')
    run = subprocess.run(
        [sys.executable, "-m", "obs_tui", "--config", str(bad), "doctor"], capture_output=True, timeout=60
    )
    out = run.stdout + run.stderr
    assert b"pwn" in out and b"\x1b" not in out and b"\x07" not in out, out


def uprobe_events(pid: int) -> list[str]:
    """bcc's tracefs uprobe entries of a process (none when it attached through perf events)."""
    try:
        with open("/sys/kernel/tracing/uprobe_events") as f:
            return [line for line in f if f"_{pid} " in line or line.rstrip().endswith(f"_{pid}")]
    except OSError:
        return []


@as_root
@pytest.mark.parametrize("ignore_sighup", [True, False], ids=["SIGHUP-ignored", "SIGHUP"])
def test_a_terminal_gone_ends_the_console_cleanly(ignore_sighup):
    """Started with SIGHUP ignored (nohup, or a shell that ignored it), or not; the terminal
    closes (the hang-up also sends SIGCONT, on which Textual would start over)."""
    with PtyConsole(["--interval", "0.5"], ignore_sighup=ignore_sighup) as con:
        con.wait_for(b"every 0.5s")  # the first frame: the probes are loaded
        pid = con.proc.pid
        gone = time.monotonic()
        con.close_master()
        code = con.wait_exit(10)
        took = time.monotonic() - gone
        # 129 comes from the app's own exit (TerminalExit), whose unmount closes the engine
        # (detaching the probes is most of the time taken); the backstop would be 129 too,
        # but only after BACKSTOP_S
        assert code == HANGUP_EXIT and took < BACKSTOP_S, f"exit {code} {took:.1f} s after the hang-up"
        print(f"exited {took:.2f} s after the hang-up")
        assert not uprobe_events(pid)


@as_root
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_gives_the_terminal_back(sig):
    with PtyConsole(["--interval", "0.5"]) as con:
        con.wait_for(b"every 0.5s")
        con.proc.send_signal(sig)
        assert con.wait_exit(15) == 128 + sig
        con.restored()


def test_an_exception_gives_the_terminal_back():
    """A frame the panes cannot draw (a bug of ours) stops the console with the terminal restored."""
    script = (
        "import dataclasses, sys\n"
        "from tests.fake_frames import FakeEngine, full_frame\n"
        "from obs_tui.tui.app import run_console\n"
        "broken = lambda i: dataclasses.replace(full_frame(i), power='no section') if i else full_frame(i)\n"
        "sys.exit(run_console(lambda: FakeEngine(broken, interval=0.3)))\n"
    )
    with PtyConsole([], command=[sys.executable, "-c", script]) as con:
        code = con.wait_exit(30)
        assert code == 1
        tail = con.restored()
        assert b"AttributeError" in tail


READ_ONLY = ["--read-only", "--prometheus", "http://127.0.0.1:9", "--interval", "0.5"]
# SGR parameters that set a colour: foreground, background (8, 16, 256 and 24-bit), defaults.
COLOUR_CODES = {*range(30, 50), *range(90, 98), *range(100, 108)}


def colour_sgr(raw: bytes) -> list[bytes]:
    return [
        params
        for params in sgr_sequences(raw)
        if any(p.isdigit() and int(p) in COLOUR_CODES for p in params.replace(b":", b";").split(b";"))
    ]


@pytest.mark.parametrize(
    "env",
    [{"NO_COLOR": "1"}, {"NO_COLOR": ""}, {"TERM": "dumb"}],
    ids=["NO_COLOR=1", "NO_COLOR-empty", "TERM=dumb"],
)
def test_no_colour_wanted_draws_plain_readable_text(env):
    with PtyConsole(READ_ONLY, env=env) as con:
        con.wait_for(b"every 0.5s")
        con.send(b"\t", 0.5)  # the focus moves: borders and the cursor row are redrawn
        con.send(b"?", 0.8)  # the help screen
        con.send(b"\x1b", 0.5)
        con.send(b"q")
        assert con.wait_exit(15) == 0
    raw = con.raw
    assert b"38;5;16;48;5;16" not in raw  # black on black, as Textual's own filter drew it
    assert colour_sgr(raw) == []
    for text in (b"Power", b"Requests", b"Carbon", b"quit", b"Keys"):
        assert text in raw
    assert any(b"1" in p.split(b";") for p in sgr_sequences(raw))  # bold is still there


def test_colour_terminals_still_get_colour():
    with PtyConsole(READ_ONLY) as con:
        con.wait_for(b"every 0.5s")
        con.send(b"q")
        con.wait_exit(15)
    assert colour_sgr(con.raw)


@pytest.mark.parametrize("cols,rows", [(30, 8), (59, 15), (14, 3), (12, 1)])
def test_too_small_notice_fits(cols, rows):
    lines = notice(cols, rows).split("\n")
    with PtyConsole(READ_ONLY, cols=cols, rows=rows) as con:
        for line in lines:
            con.wait_for(line.encode())
        con.send(b"q")
        assert con.wait_exit(15) == 0


def test_too_small_notice_never_cut():
    for width in range(10, MIN_WIDTH + 1):
        for height in range(1, MIN_HEIGHT + 1):
            lines = notice(width, height).split("\n")
            assert len(lines) <= height and max(map(len, lines)) <= width, (width, height)
    assert "Enlarge the window" in notice(40, 8) and notice(30, 8).startswith("Too small: 30x8")


def test_metrics_label_values_are_printable():
    """/metrics is read with curl on a terminal too; the exposition format escapes only
    backslash, quote and newline."""
    from dataclasses import replace

    from prometheus_client import CollectorRegistry, generate_latest

    from obs_tui.exporter import FrameCollector
    from tests import fake_frames

    frame = fake_frames.full_frame(0)
    power = replace(frame.power, processes=tuple(replace(p, comm=EVIL) for p in frame.power.processes))
    collector = FrameCollector(top_processes=3)
    collector.publish(replace(frame, power=power, host=EVIL))
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry)
    assert b"]0;pwn" in text and b"\x1b" not in text and b"\x07" not in text
