"""Themes are data: one TOML file per theme in the top-level `themes/` folder, and the
user's own in $XDG_CONFIG_HOME/obs-tui/themes (a user file of the same name wins).

Each file holds the fields of `textual.theme.Theme` (name, primary, ..., a [variables] table).
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path

from textual.theme import Theme

THEMES_DIR = Path(__file__).resolve().parents[2] / "themes"
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


@lru_cache(maxsize=None)
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


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


def initial_theme(requested: str) -> str:
    """The theme to start with: NO_COLOR forces mono, whatever was asked for."""
    return "mono" if no_color() else resolve_name(requested)
