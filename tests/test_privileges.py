"""Least privilege: the real console, started as root under real HTTP traffic, gives up root
once its probes are loaded and goes on counting requests through the descriptors it holds."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench import ui_cost
from obs_tui import privileges
from obs_tui.sources.accounts import target_user
from tests import servers

REPO = Path(__file__).resolve().parent.parent
NOBODY = pwd.getpwnam("nobody")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the drop is from root")


def test_target_is_the_sudo_user_else_nobody():
    assert target_user({"SUDO_UID": "1234", "SUDO_GID": "2345"}) == (1234, 2345, "1234")
    assert target_user({}) == (NOBODY.pw_uid, NOBODY.pw_gid, "nobody")
    # sudo from root, or garbage in the variables: never "drop" to root
    assert target_user({"SUDO_UID": "0", "SUDO_GID": "0"})[0] == NOBODY.pw_uid
    assert target_user({"SUDO_UID": "-5"})[0] == NOBODY.pw_uid
    assert target_user({"SUDO_UID": "1234", "SUDO_GID": "0"})[1] == 1234


def status(pid: int | str, task: str = "") -> dict[str, str]:
    return privileges.status_fields(f"/proc/{pid}/{task}status")


class Load:
    """Keep-alive GETs to one port while `on` is set (about 50 a second)."""

    def __init__(self, port: int) -> None:
        self.port, self.on, self.stop = port, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop.is_set():
            if not self.on.wait(0.05):
                continue
            conn.request("GET", "/health")
            conn.getresponse().read()
            time.sleep(0.02)
        conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def cell(screen: str, pid: int, name: str) -> str | None:
    """The cell under the column named `name` in the service row for pid (zoomed Requests
    pane: one word per cell)."""
    lines = screen.splitlines()
    header = next((line.split() for line in lines if line.split()[:2] == ["SERVICE", "PID"]), None)
    if header is None:
        return None
    column = next(i for i, title in enumerate(header) if title.startswith(name))
    for line in lines:
        cells = line.split()
        if len(cells) > column and cells[1] == str(pid):
            return cells[column]
    return None


def rps_of(screen: str, pid: int) -> float | None:
    text = cell(screen, pid, "RPS")
    return None if text is None else float(text)


def wait_screen(session: str, pid: int, ok, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = ui_cost.capture(session)
        rps = rps_of(screen, pid)
        if rps is not None and ok(rps):
            return screen
        time.sleep(0.25)
    raise AssertionError(f"service {pid} never showed the expected rate:\n{screen}")


def wait_screen_text(session: str, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in ui_cost.capture(session):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never on screen:\n{ui_cost.capture(session)}")
        time.sleep(0.1)


@as_root
def test_console_drops_root_and_keeps_counting(tmp_path):
    reach = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import textual, obs_tui"],
        cwd=REPO,
        capture_output=True,
    )
    if reach.returncode != 0:
        pytest.skip(f"user nobody cannot read this checkout ({REPO})")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    env = {"TERM": "tmux-256color", "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "obs_tui", "--interval", "0.5"]
    with servers.python_server(tmp_path / "a") as before:
        load = Load(before.port)
        pid = ui_cost.start_pane("privdrop", argv, env, 120, 40)
        try:
            load.on.set()
            started = time.monotonic()
            wait_screen_text("privdrop", "Requests")
            ui_cost.tmux("send-keys", "-t", "privdrop", "2")  # zoom the Requests pane
            screen = wait_screen("privdrop", before.pid, lambda rps: rps > 0)
            # found while root at load: its port is known though nobody cannot read its fds
            assert cell(screen, before.pid, "PORTS") == str(before.port)
            # Up and counting: every thread is nobody with no capabilities at all.
            for task in os.listdir(f"/proc/{pid}/task"):
                fields = status(pid, f"task/{task}/")
                assert fields["Uid"].split() == [str(NOBODY.pw_uid)] * 4, fields["Uid"]
                assert fields["Gid"].split() == [str(NOBODY.pw_gid)] * 4
                assert fields["Groups"] == ""
                for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
                    assert int(fields[cap], 16) == 0, (task, cap, fields[cap])
                assert fields["NoNewPrivs"] == "1"
            # The panes go on updating as nobody: the rate falls to 0 when the traffic stops
            # and comes back when it starts again...
            load.on.clear()
            wait_screen("privdrop", before.pid, lambda rps: rps == 0)
            load.on.set()
            wait_screen("privdrop", before.pid, lambda rps: rps > 0)
            # ...and a server started after the drop is found by its accepts in kernel.
            with servers.python_server(tmp_path / "b") as after:
                later = Load(after.port)
                later.on.set()
                try:
                    screen = wait_screen("privdrop", after.pid, lambda rps: rps > 0)
                finally:
                    later.close()
            assert status(pid)["Uid"].split()[0] == str(NOBODY.pw_uid)
            assert not ui_cost.pane_dead("privdrop"), screen
            assert time.monotonic() - started < 60
        finally:
            load.close()
            ui_cost.kill_session("privdrop", [pid])
            ui_cost.tmux_kill_server()


@as_root
def test_snapshot_reports_the_drop_and_keep_root_stays():
    def snapshot(*extra):
        result = subprocess.run(
            [sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "0.2", *extra],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("SUDO_")},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["privileges"]

    dropped = snapshot()
    assert dropped["dropped"] and dropped["uid"] == NOBODY.pw_uid and dropped["user"] == "nobody"
    assert 0 < dropped["root_seconds"] < 30
    kept = snapshot("--keep-root")
    assert not kept["dropped"] and kept["uid"] == 0


def test_drop_when_not_root_changes_nothing():
    code = (
        "from obs_tui import privileges; d = privileges.drop(); "
        "print(d.dropped, d.uid == __import__('os').getuid())"
    )
    argv = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "nobody", "--"] + argv
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0 and "Permission denied" in result.stderr:
        pytest.skip(f"user nobody cannot read this checkout ({REPO})")
    assert result.stdout.split() == ["False", "True"], result.stderr


@as_root
def test_an_install_the_target_cannot_read_refuses_to_drop(tmp_path):
    """Installed in a directory only root can read (a venv in /root): as nobody, lazy imports
    would fail later in the session. obs-tui says so at once, in one line, and exits."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(REPO / "obs_tui", private / "obs_tui")
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "0.1"],
        capture_output=True,
        text=True,
        cwd=private,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SUDO_")},
            "PYTHONPATH": str(private),
        },
    )
    lines = [line for line in result.stderr.splitlines() if "kernel-headers" not in line]
    assert result.returncode == 1 and result.stdout == ""
    assert lines == [
        f"obs-tui: cannot drop root: user nobody cannot read {private / 'obs_tui'} "
        "(install obs-tui where other users can read it) (use --keep-root to stay root)"
    ]


@as_root
def test_a_child_that_dies_with_its_parent_still_does_after_the_drop():
    """The kernel clears PR_SET_PDEATHSIG when credentials change: drop() sets it again, so the
    demo's agent (root at start, nobody once ready) dies with a demo killed outright."""
    code = (
        "import ctypes, os, signal, sys, time\n"
        "ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)\n"
        "from obs_tui import privileges\n"
        "privileges.limit()\n"
        "d = privileges.drop()\n"
        "print(d.dropped, os.getuid(), privileges._death_signal(), flush=True)\n"
        "time.sleep(60)\n"
    )
    # a middle process that starts the child and is then killed with SIGKILL
    middle = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"p = subprocess.Popen([sys.executable, '-c', {code!r}], cwd={str(REPO)!r})\n"
            "print(p.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(middle.stdout.readline())
        assert middle.stdout.readline().split() == ["True", str(NOBODY.pw_uid), "15"]
    finally:
        middle.kill()
        middle.wait()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{child}") and status(child).get("State", "").split()[0] != "Z":
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)
