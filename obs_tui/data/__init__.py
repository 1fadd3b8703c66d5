"""Tables shipped with obs-tui, each value with its source: grid carbon intensity per cloud
region and country (grid_intensity.json) and the clouds' PUE presets."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class GridValue:
    key: str  # "aws:eu-west-1", "country:fra", or "default"
    g_per_kwh: float
    where: str
    source: str  # short name of the source: "EEA via CCF", "Ember"
    year: int | None  # the data year, None where the source does not state it

    @property
    def cloud(self) -> str | None:
        prefix = self.key.split(":", 1)[0]
        return prefix if prefix in pue_presets() else None

    def label(self) -> str:
        """'aws:eu-west-1 (EEA via CCF, year n/s)': what the pane and the snapshot show."""
        year = self.year if self.year is not None else "year n/s"
        return f"{self.key} ({self.source}, {year})"


@cache
def grid_table() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("grid_intensity.json").read_text(encoding="utf-8")
    return json.loads(text)


def normalise_region(name: str) -> str:
    """Case and spaces do not matter: 'azure:West Europe' is 'azure:westeurope'."""
    return name.strip().lower().replace(" ", "")


def _value(key: str, row: dict[str, Any]) -> GridValue:
    source = grid_table()["sources"][row["source"]]
    return GridValue(key, float(row["g_per_kwh"]), row["where"], source["short"], row["year"])


def region_value(name: str) -> GridValue | None:
    key = normalise_region(name)
    row = grid_table()["regions"].get(key)
    return None if row is None else _value(key, row)


def close_regions(name: str, n: int = 3) -> list[str]:
    key = normalise_region(name)
    keys = list(grid_table()["regions"])
    close = difflib.get_close_matches(key, keys, n=n, cutoff=0.6)
    if not close and ":" in key:  # a known prefix with an unknown name: show a few of that prefix
        prefix = key.split(":", 1)[0] + ":"
        close = difflib.get_close_matches(key, [k for k in keys if k.startswith(prefix)], n=n, cutoff=0.0)
    return close


def world_default() -> GridValue:
    return _value("world", grid_table()["default"])


def pue_presets() -> dict[str, float]:
    return dict(grid_table()["pue"])
