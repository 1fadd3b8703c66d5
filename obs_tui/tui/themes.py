"""Themes are data: one TOML file per theme in the top-level `themes/` folder (obs_tui.themes).

Each file holds the fields of `textual.theme.Theme` (name, primary, ..., a [variables] table).
"""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from functools import lru_cache
from pathlib import Path

from textual.theme import Theme

THEMES_DIR = Path(str(importlib.resources.files("obs_tui.themes")))
ALIASES = {"16color": "mono", "16-color": "mono", "monochrome": "mono", "ansi": "mono"}
# Cycle order for the T key.
ORDER = ("dark", "light", "mono")


def available_themes() -> list[str]:
    """Theme names found in themes/, the usual three first."""
    names = sorted(p.stem for p in THEMES_DIR.glob("*.toml"))
    return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


def resolve_name(name: str) -> str:
    name = name.strip().lower()
    return ALIASES.get(name, name)


@lru_cache(maxsize=None)
def load_theme(name: str) -> Theme:
    """The Theme called `name` (or an alias such as "16color"); ValueError names the valid ones."""
    real = resolve_name(name)
    path = THEMES_DIR / f"{real}.toml"
    if not path.is_file():
        valid = ", ".join(available_themes() + sorted(ALIASES))
        raise ValueError(f"unknown theme {name!r}; valid themes: {valid}")
    with path.open("rb") as f:
        data = tomllib.load(f)
    data["name"] = real
    try:
        return Theme(**data)
    except TypeError as exc:
        raise ValueError(f"{path}: {exc}") from None


def no_color() -> bool:
    """NO_COLOR (https://no-color.org): set and not empty."""
    return bool(os.environ.get("NO_COLOR"))


def initial_theme(requested: str) -> str:
    """The theme to start with: NO_COLOR forces mono, whatever was asked for."""
    return "mono" if no_color() else resolve_name(requested)
