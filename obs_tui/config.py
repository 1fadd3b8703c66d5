"""The TOML config: where it is looked for, what keys it may hold, and their types.

Every problem is a ConfigError whose message names the file, the key and what is wrong;
the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import os
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


def search_paths() -> list[Path]:
    paths = []
    env = os.environ.get("OBS_TUI_CONFIG")
    if env:
        paths.append(Path(env))
    paths.append(Path.home() / ".config" / "obs-tui" / "config.toml")
    paths.append(Path("/etc/obs-tui/config.toml"))
    return paths


# key -> (type(s), default). A nested dict is a table; a list [dict] is an array of tables.
_NUMBER = (int, float)
SCHEMA: dict[str, Any] = {
    "interval": (_NUMBER, 1.0),
    "theme": (str, "dark"),
    "slo_files": (list, []),
    # Stay root after the probes are loaded (obs_tui/privileges.py says what that costs).
    "keep_root": (bool, False),
    "prometheus": {
        "url": (str, ""),
        "bearer_token_file": (str, ""),
        "basic_auth_user": (str, ""),
        "basic_auth_password_file": (str, ""),
        "ca_file": (str, ""),
        "timeout_s": (_NUMBER, 5),
    },
    "power": {
        "powercap_root": (str, "/sys/class/powercap"),
    },
    "carbon": {
        "grid_g_per_kwh": (_NUMBER, 400),
        "region": (str, ""),
        "pue": (_NUMBER, 1.0),
    },
    "red": {
        "routes": (list, []),
        "max_children": (int, 10),
    },
    "slo": [{
        "name": (str, None),
        "objective": (_NUMBER, None),
        "period": (str, "30d"),
        "error_query": (str, None),
        "total_query": (str, None),
        "description": (str, ""),
    }],
}


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    interval: float = 1.0
    theme: str = "dark"
    slo_files: tuple[str, ...] = ()
    keep_root: bool = False
    prometheus: dict[str, Any] = field(default_factory=dict)
    power: dict[str, Any] = field(default_factory=dict)
    carbon: dict[str, Any] = field(default_factory=dict)
    red: dict[str, Any] = field(default_factory=dict)
    slo: tuple[dict[str, Any], ...] = ()


def _type_name(types) -> str:
    if types is _NUMBER:
        return "a number"
    return {str: "a string", int: "an integer", list: "a list", bool: "true or false"}[types]


def _check_value(where: str, key: str, value: Any, types) -> Any:
    # bool is an int subclass in Python; in a config it is never a number.
    if isinstance(value, bool) or not isinstance(value, types):
        raise ConfigError(f"{where}: key '{key}' must be {_type_name(types)}, got {value!r}")
    if types is _NUMBER:
        try:
            number = float(value)
        except OverflowError:  # an integer too big for a float
            number = math.inf
        if not math.isfinite(number):  # TOML has nan and inf; no setting means either
            raise ConfigError(f"{where}: key '{key}' must be a finite number, got {value!r}")
        return number
    return value


def _printable(name: str) -> str:
    """A key as it may be shown on one terminal line (a TOML key can hold any character)."""
    return name if name.isprintable() else name.encode("unicode_escape").decode("ascii")


def _check_table(where: str, prefix: str, table: dict, schema: dict) -> dict:
    out: dict[str, Any] = {}
    for key, value in table.items():
        full = _printable(f"{prefix}{key}")
        if key not in schema:
            raise ConfigError(f"{where}: unknown key '{full}'")
        spec = schema[key]
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: key '{full}' must be a table [{full}]")
            out[key] = _check_table(where, full + ".", value, spec)
        elif isinstance(spec, list):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(f"{where}: key '{full}' must be an array of tables [[{full}]]")
            out[key] = [_check_table(where, f"{full}[{i}].", item, spec[0]) for i, item in enumerate(value)]
        else:
            out[key] = _check_value(where, full, value, spec[0])
    for key, spec in schema.items():
        if key in out:
            continue
        if isinstance(spec, dict):
            out[key] = _check_table(where, f"{prefix}{key}.", {}, spec)
        elif isinstance(spec, list):
            out[key] = []
        elif spec[1] is None:
            raise ConfigError(f"{where}: missing required key '{prefix}{key}'")
        else:
            out[key] = spec[1]
    return out


def parse(text: str, where: str = "<config>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    data = _check_table(where, "", raw, SCHEMA)
    if data["interval"] <= 0:
        raise ConfigError(f"{where}: key 'interval' must be greater than 0, got {data['interval']}")
    for i, slo in enumerate(data["slo"]):
        if not 0 < slo["objective"] < 1:
            raise ConfigError(f"{where}: key 'slo[{i}].objective' must be a ratio between 0 and 1 "
                              f"(0.999 for 99.9 %), got {slo['objective']}")
    for key in ("routes",):
        for item in data["red"][key]:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigError(f"{where}: key 'red.{key}' must list paths starting with '/', got {item!r}")
    path = None if where == "<config>" else Path(where)
    return Config(path=path, interval=data["interval"], theme=data["theme"],
                  slo_files=tuple(data["slo_files"]), keep_root=data["keep_root"], prometheus=data["prometheus"],
                  power=data["power"], carbon=data["carbon"], red=data["red"],
                  slo=tuple(data["slo"]))


def load(flag_path: str | None = None) -> Config:
    """The config from --config, else the first file found on the search path, else defaults."""
    if flag_path is not None:
        path = Path(flag_path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
    else:
        path = next((p for p in search_paths() if p.is_file()), None)
        env = os.environ.get("OBS_TUI_CONFIG")
        if env and path != Path(env):
            raise ConfigError(f"{env}: config file not found (from $OBS_TUI_CONFIG)")
        if path is None:
            return parse("", "<config>")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    return parse(text, str(path))
