"""Themes are data: one TOML file per theme in the top-level `themes/` folder (shipped as
obs_tui.themes), and the user's own in $XDG_CONFIG_HOME/obs-tui/themes (a user file of the same
name wins).

Each file holds the fields of `textual.theme.Theme` (name, primary, ..., a [variables] table).
With NO_COLOR or TERM=dumb the console starts in mono and draws no colour at all (Colourless).
"""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from functools import cache
from pathlib import Path

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter, Monochrome, NoColor
from textual.theme import Theme

THEMES_DIR = Path(str(importlib.resources.files("obs_tui.themes")))
ALIASES = {"16color": "mono", "16-color": "mono", "monochrome": "mono", "ansi": "mono"}
# Cycle order for the T key.
ORDER = ("dark", "light", "mono")


def user_themes_dir() -> Path:
    from obs_tui.config import user_config_dir

    return user_config_dir() / "themes"


def _theme_files() -> dict[str, Path]:
    """name -> file, the user's over the shipped ones."""
    files = {p.stem: p for p in THEMES_DIR.glob("*.toml")}
    try:
        files.update({p.stem.lower(): p for p in user_themes_dir().glob("*.toml") if p.is_file()})
    except OSError:  # an unreadable user directory hides only the user's themes
        pass
    return files


def available_themes() -> list[str]:
    """Theme names found in themes/ and the user's themes, the usual three first."""
    names = sorted(_theme_files())
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


def resolve_name(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


@cache
def load_theme(name: str) -> Theme:
    """The Theme called `name` (or an alias such as "16color"); ValueError names the valid ones."""
    real = resolve_name(name)
    path = _theme_files().get(real)
    if path is None:
        valid = ", ".join(available_themes() + sorted(ALIASES))
        raise ValueError(f"unknown theme {name!r}; valid themes: {valid}")
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    data["name"] = real
    try:
        return Theme(**data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


def colourless() -> bool:
    """No colour wanted: NO_COLOR set (https://no-color.org; Textual takes it set even when
    empty, and so do we) or a dumb terminal (TERM=dumb)."""
    return "NO_COLOR" in os.environ or os.environ.get("TERM", "") == "dumb"


def initial_theme(requested: str) -> str:
    """The theme to start with: mono when no colour is wanted, whatever was asked for."""
    return "mono" if colourless() else resolve_name(requested)


class Colourless(LineFilter):
    """Every colour taken off what is drawn; bold, underline and reverse kept (the cursor row
    is reverse video, states are spelled out).

    Textual's own NO_COLOR filter is chosen before the app's theme is known: for a theme of
    terminal colours (mono) it maps "the terminal's default" to black, drawing every cell
    black on black; and it ignores TERM=dumb."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            Segment(text, None if style is None else style.without_color, control)
            for text, style, control in segments
        ]


def drop_colour(filters: list[LineFilter]) -> list[LineFilter]:
    """An app's line filters with Textual's colour removers replaced by Colourless."""
    return [f for f in filters if not isinstance(f, (Monochrome, NoColor))] + [Colourless()]
