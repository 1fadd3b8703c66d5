"""The keys and the mouse that htop users bring: F10, I, a click on a header, and what the
console remembers between runs (the theme and each pane's sort)."""

from __future__ import annotations

import os
import pwd
import re
import sys
from pathlib import Path

import pytest

from obs_tui.tui.panes import PowerPane, RequestsPane
from obs_tui.tui.state import Remembered, state_dir
from obs_tui.tui.table import ColumnGroup
from tests.fake_frames import FakeEngine
from tests.test_tui import aio, console, make_app, started


def shown_watts(pane) -> list[float]:
    shown = pane._shown[1:]  # after the pinned Idle
    return [row.power.watts if row.power else -1.0 for row in shown]


@aio
async def test_f10_quits():
    engines = []
    app = type(make_app())(lambda: engines.append(FakeEngine()) or engines[-1])
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app, pilot, frames=0)
        await pilot.press("f10")
        await pilot.pause()
        assert app.return_code == 0
    assert engines[0].closed


@aio
async def test_capital_i_reverses_the_sort_and_back():
    async with console(size=(160, 48)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        assert power.sort_col == "w" and power.sort_reverse
        before = shown_watts(power)
        assert before == sorted(before, reverse=True)
        await pilot.press("I")
        await pilot.pause()
        assert power.sort_col == "w" and not power.sort_reverse
        assert shown_watts(power) == sorted(shown_watts(power))
        assert power.table.sort_reverse is False  # the header's arrow follows
        await pilot.press("I")
        await pilot.pause()
        assert power.sort_reverse and shown_watts(power) == before


def header_x(pane, column: str) -> tuple[ColumnGroup, int]:
    """The group drawing `column` and an x inside its header label."""
    table = pane.table
    for group in table._shown:
        x = 0
        for i, width in group.shown:
            if table.columns[i].key == column:
                return group, x + 1
            x += width
    raise AssertionError(f"{column} not shown")


@aio
async def test_click_on_a_header_sorts_by_it_and_again_reverses():
    async with console(size=(160, 48)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        group, x = header_x(power, "comm")
        assert await pilot.click(group, offset=(x, 0))
        await pilot.pause()
        assert power.sort_col == "comm"
        comms = [power.table.row(k)[1] for k in power.table.keys[1:]]
        assert comms == sorted(comms, key=str.lower)
        first_reverse = power.sort_reverse
        group, x = header_x(power, "comm")
        assert await pilot.click(group, offset=(x, 0))
        await pilot.pause()
        assert power.sort_col == "comm" and power.sort_reverse is not first_reverse
        # a click on a data row still moves the cursor, and never sorts
        group, x = header_x(power, "w")
        assert await pilot.click(group, offset=(x, 2))
        await pilot.pause()
        assert power.sort_col == "comm" and power.table.cursor == 1


@aio
async def test_remembered_sorts_are_restored_and_changes_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    uid = os.geteuid()
    remembered = Remembered(uid, sorts={"power": ("cpu", True), "requests": ("nope", True)})
    app = make_app()
    app.remembered = remembered
    remembered.start(app.theme)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(app, pilot)
        power, requests = app.main.query_one(PowerPane), app.main.query_one(RequestsPane)
        assert (power.sort_col, power.sort_reverse) == ("cpu", True)
        assert requests.sort_col == requests.DEFAULT_SORT  # an unknown column is ignored
        await pilot.press("tab", "greater_than_sign", "T")  # the Requests pane's next sort; a theme
        await pilot.pause()
        theme, changed_sort = app.theme, (requests.sort_col, requests.sort_reverse)
    assert remembered.save_from(app.theme, app.main.panes)
    again = Remembered.load(uid)
    assert again.theme == theme != "dark"
    assert again.sorts["requests"] == changed_sort and again.sorts["power"] == ("cpu", True)
    path = tmp_path / "obs-tui" / "console.toml"
    assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == uid


def test_nothing_changed_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    remembered = Remembered.load(os.geteuid())
    remembered.start("dark")
    assert not remembered.save_from("dark", [])
    assert not (tmp_path / "obs-tui").exists()


def test_an_odd_state_file_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    (tmp_path / "obs-tui").mkdir()
    (tmp_path / "obs-tui" / "console.toml").write_text("theme = [\n")
    assert Remembered.load(os.geteuid()).theme == ""
    (tmp_path / "obs-tui" / "console.toml").write_text("theme = 3\n[sort]\npower = 'w'\n")
    state = Remembered.load(os.geteuid())
    assert state.theme == "" and state.sorts == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="root's view of another user's files")
def test_root_never_writes_into_another_users_home(tmp_path, monkeypatch):
    """`sudo -E` keeps the user's HOME and XDG_STATE_HOME: root ignores them (their owner is
    not root) and would use its own home; and a state that belongs to another user is only
    ever written by that user, never by root."""
    alice = tmp_path / "alice"
    (alice / ".local" / "state").mkdir(parents=True)
    nobody = pwd.getpwnam("nobody")
    for path in (alice, alice / ".local", alice / ".local" / "state"):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    monkeypatch.setenv("HOME", str(alice))
    monkeypatch.setenv("XDG_STATE_HOME", str(alice / ".local" / "state"))
    root_dir = state_dir(0)
    assert root_dir is not None and not str(root_dir).startswith(str(alice))
    assert root_dir == Path(pwd.getpwuid(0).pw_dir) / ".local" / "state" / "obs-tui"
    theirs = Remembered(nobody.pw_uid, theme="light")
    assert not theirs.write()  # root is not nobody
    assert state_dir(nobody.pw_uid) is None  # nobody has no home: nothing is remembered
    assert list((alice / ".local" / "state").iterdir()) == []


def test_sudo_reads_the_invoking_users_state_not_roots(monkeypatch):
    from obs_tui.tui.state import owner_uid

    if os.geteuid() != 0:
        assert owner_uid(drops_root=True) == os.geteuid()
        return
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setenv("SUDO_UID", str(nobody.pw_uid))
    monkeypatch.setenv("SUDO_GID", str(nobody.pw_gid))
    assert owner_uid(drops_root=True) == nobody.pw_uid
    assert owner_uid(drops_root=False) == 0  # --keep-root: root's own state


# ---- user themes and the config search path -------------------------------------------------

THEME = """name = "{name}"
primary = "#88c0d0"
background = "#2e3440"
dark = true
"""


def test_user_themes_from_xdg_config_home(tmp_path, monkeypatch):
    from obs_tui.tui.themes import available_themes, load_theme

    themes = tmp_path / "obs-tui" / "themes"
    themes.mkdir(parents=True)
    (themes / "nordish.toml").write_text(THEME.format(name="ignored"))
    (themes / "broken.toml").write_text("primary = [")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    names = available_themes()
    assert names[:3] == ["dark", "light", "mono"] and "nordish" in names
    assert load_theme("nordish").primary == "#88c0d0" and load_theme("nordish").name == "nordish"
    with pytest.raises(ValueError, match="broken.toml"):
        load_theme("broken")
    # the console offers the good one on T and leaves the broken one out
    app = make_app()
    assert "nordish" in app._themes and "broken" not in app._themes


def test_user_theme_from_the_real_cli(tmp_path):
    from tests.test_cli import assert_one_line_error, run_cli

    themes = tmp_path / "obs-tui" / "themes"
    themes.mkdir(parents=True)
    (themes / "broken2.toml").write_text("primary = [")
    result = run_cli("--theme", "broken2", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert_one_line_error(result, "--theme", "broken2.toml")


def test_config_search_path_honours_xdg_config_home(tmp_path, monkeypatch):
    from obs_tui.config import load, search_paths

    (tmp_path / "obs-tui").mkdir()
    (tmp_path / "obs-tui" / "config.toml").write_text("interval = 7.0\n")
    monkeypatch.delenv("OBS_TUI_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert search_paths()[0] == tmp_path / "obs-tui" / "config.toml"
    assert load().interval == 7.0
    # a relative XDG_CONFIG_HOME is ignored, as the XDG spec says
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert search_paths()[0] == Path.home() / ".config" / "obs-tui" / "config.toml"


# ---- --no-mouse, on a real terminal ---------------------------------------------------------

MOUSE_ON = b"\x1b[?1000h"  # the request for mouse reports that stops the terminal's own selection


def console_output(
    *flags: str,
    seconds: float = 20.0,
    keys: bytes = b"",
    env_extra=None,
    state_home: str = "/nonexistent-obs-tui-test",
) -> bytes:
    """What the real console writes to a pseudo-terminal until its first frame; then `keys`
    and q."""
    import pty
    import select
    import signal
    import sys
    import time

    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": "120",
        "LINES": "40",
        "XDG_STATE_HOME": state_home,
        **(env_extra or {}),
    }
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console on the pty
        os.execve(sys.executable, [sys.executable, "-m", "obs_tui", "--read-only", *flags], env)
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    out = b""
    deadline = time.monotonic() + seconds
    quit_sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not quit_sent and re.search(rb"\d%", out):  # the first frame's rows are drawn
                for key in keys:
                    os.write(fd, bytes([key]))
                    time.sleep(0.3)
                os.write(fd, b"q")
                quit_sent = True
        assert quit_sent, out[-400:]
    finally:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                time.sleep(2)
                done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        finally:
            os.close(fd)
    return out


def test_no_mouse_leaves_the_mouse_to_the_terminal():
    assert MOUSE_ON in console_output()
    assert MOUSE_ON not in console_output("--no-mouse")


@pytest.fixture
def sudo_user(tmp_path):
    """A real user with a home, as the one who ran sudo; removed afterwards."""
    import shutil
    import subprocess

    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("needs root and useradd")
    import tempfile

    name = f"obstui{os.getpid() % 100000}"
    top = Path(tempfile.mkdtemp(prefix="obs-tui-home-"))  # pytest's tmp_path is root's alone
    top.chmod(0o755)
    home = top / "home"
    subprocess.run(
        ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name],
        check=True,
        capture_output=True,
    )
    try:
        entry = pwd.getpwnam(name)
        reach = subprocess.run(
            ["runuser", "-u", name, "--", sys.executable, "-c", "import obs_tui.cli"],
            capture_output=True,
            cwd=os.path.dirname(os.path.dirname(__file__)),
        )
        if reach.returncode != 0:
            pytest.skip("a new user cannot read this checkout")
        yield entry
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def test_under_sudo_the_invoking_user_writes_their_own_state(sudo_user, tmp_path):
    """`sudo obs-tui`, T, q: the theme lands in the invoking user's home, written by that user
    after the console dropped root; root's own state (here: a directory root owns, given as
    $XDG_STATE_HOME as `sudo -E` would pass a root-owned one) is not touched."""
    roots = tmp_path / "root-state"
    roots.mkdir()
    console_output(
        keys=b"T",
        state_home=str(roots),
        env_extra={
            "SUDO_UID": str(sudo_user.pw_uid),
            "SUDO_GID": str(sudo_user.pw_gid),
            "SUDO_USER": sudo_user.pw_name,
        },
    )
    path = Path(sudo_user.pw_dir) / ".local" / "state" / "obs-tui" / "console.toml"
    assert path.is_file()
    assert path.stat().st_uid == sudo_user.pw_uid and path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_uid == sudo_user.pw_uid
    assert 'theme = "light"' in path.read_text()
    assert list(roots.iterdir()) == []
