"""What the console remembers between runs: the theme chosen with T and each pane's sort.

Kept in $XDG_STATE_HOME/obs-tui/console.toml (~/.local/state/obs-tui/console.toml), the XDG
place for "state that should persist between restarts" (the config file stays the user's
own text, never rewritten by obs-tui).

Whose file: the user the console runs as. `sudo obs-tui` loads its probes as root and then
becomes the user who ran sudo (obs_tui/privileges.py): it reads and writes that user's file,
found from the password database (sudo's HOME is root's), and writes it only once it runs as
that user. So root never creates or rewrites a file in another user's home, and a file is only
ever written by the user it belongs to, in a directory that user owns (checked, and opened
without following a symlink at the last step). Root without sudo becomes `nobody`, who has
no home: nothing is remembered then, unless --keep-root keeps it root (root's own file).
Nothing here is worth an error: an unreadable or odd state file is ignored.
"""

from __future__ import annotations

import os
import pwd
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "console.toml"


def owner_uid(drops_root: bool) -> int:
    """The user the console will run as: under root with the drop, the one it drops to."""
    if os.geteuid() == 0 and drops_root:
        from obs_tui.sources.accounts import target_user

        return target_user()[0]
    return os.geteuid()


def _owned_by(path: Path, uid: int) -> bool:
    try:
        return path.stat().st_uid == uid
    except OSError:
        return False


def state_dir(uid: int) -> Path | None:
    """obs-tui's state directory of user `uid`, or None when that user has no home.

    The environment ($XDG_STATE_HOME, $HOME) is used only when it is this process's own user's
    and points into a home that user owns; otherwise (sudo's HOME is root's) the password
    database's home."""
    try:
        home = Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:
        return None
    if uid == os.geteuid():
        env_home = Path(os.environ.get("HOME") or home)
        if _owned_by(env_home, uid):
            home = env_home
        xdg = os.environ.get("XDG_STATE_HOME", "")
        if os.path.isabs(xdg) and _owned_by(Path(xdg), uid):
            return Path(xdg) / "obs-tui"
    if not home.is_dir() or not _owned_by(home, uid):
        return None  # nobody's /nonexistent, or a home that is not theirs
    return home / ".local" / "state" / "obs-tui"


@dataclass
class Remembered:
    """The remembered theme and sorts of one user, and what this run changed."""

    uid: int
    theme: str = ""
    sorts: dict[str, tuple[str, bool]] = field(default_factory=dict)  # pane name -> (column, reverse)
    _start_theme: str = ""
    _start_sorts: dict[str, tuple[str, bool]] = field(default_factory=dict)

    @classmethod
    def load(cls, uid: int) -> Remembered:
        state = cls(uid)
        directory = state_dir(uid)
        if directory is None:
            return state
        try:
            with open(directory / FILE_NAME, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return state
        if isinstance(data.get("theme"), str):
            state.theme = data["theme"]
        for pane, sort in (data.get("sort") or {}).items():
            if (
                isinstance(sort, dict)
                and isinstance(sort.get("column"), str)
                and isinstance(sort.get("reverse"), bool)
            ):
                state.sorts[pane] = (sort["column"], sort["reverse"])
        return state

    # ---- the console's side ---------------------------------------------------------------

    def start(self, theme: str) -> None:
        """The theme the console starts with, as the app resolved it (NO_COLOR, aliases)."""
        self._start_theme = theme

    def restore_sorts(self, panes: Iterable[Any]) -> None:
        for pane in panes:
            column, reverse = self.sorts.get(_name(pane), (pane.sort_col, pane.sort_reverse))
            if column in pane.SORTS and (column, reverse) != (pane.sort_col, pane.sort_reverse):
                pane.set_sort(column, reverse)
            self._start_sorts[_name(pane)] = (pane.sort_col, pane.sort_reverse)

    def save_from(self, theme: str, panes: Iterable[Any]) -> bool:
        """Keep what the user changed during the run; True when the file was written."""
        changed = False
        if theme and theme != self._start_theme:
            self.theme, changed = theme, True
        for pane in panes:
            now = (pane.sort_col, pane.sort_reverse)
            if now[0] not in pane.SORTS:  # compare's sort by the biggest movers lasts one run
                continue
            if now != self._start_sorts.get(_name(pane), now):
                self.sorts[_name(pane)], changed = now, True
        return changed and self.write()

    def write(self) -> bool:
        """Write the file as its own user only (never as root into another user's home)."""
        if os.geteuid() != self.uid:
            return False
        directory = state_dir(self.uid)
        if directory is None:
            return False
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _owned_by(directory, self.uid) or directory.is_symlink():
                return False
            tmp = directory / f".{FILE_NAME}.{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.as_toml())
            os.replace(tmp, directory / FILE_NAME)
        except OSError:
            return False
        return True

    def as_toml(self) -> str:
        lines = [
            "# Written by obs-tui when you change the theme (T) or a pane's sort; delete it to forget.",
            f"theme = {_quote(self.theme)}",
            "",
            "[sort]",
        ]
        for pane, (column, reverse) in sorted(self.sorts.items()):
            lines.append(
                f"{pane} = {{ column = {_quote(column)}, reverse = {'true' if reverse else 'false'} }}"
            )
        return "\n".join(lines) + "\n"


def _name(pane: Any) -> str:
    return (pane.id or type(pane).__name__).removeprefix("pane-")


def _quote(text: str) -> str:
    import json

    return json.dumps(text)
