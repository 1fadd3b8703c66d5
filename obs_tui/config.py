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
# Default None: the key is required. Default UNSET: the key is optional and absent when not
# set (so "not set" differs from any value, e.g. carbon.grid_g_per_kwh).
_NUMBER = (int, float)
_NUMBER_OR_NAME = (int, float, str)
UNSET = object()
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
        "cert_file": (str, ""),
        "key_file": (str, ""),
        "timeout_s": (_NUMBER, 5),
        "refresh_s": (_NUMBER, 15),
    },
    "power": {
        "powercap_root": (str, "/sys/class/powercap"),
        "hwmon_root": (str, "/sys/class/hwmon"),
        # The estimate where there is no RAPL; 0 takes the value from the coefficient table.
        "min_watts_per_vcpu": (_NUMBER, 0.0),
        "max_watts_per_vcpu": (_NUMBER, 0.0),
        "memory_watts_per_gb": (_NUMBER, 0.392),
    },
    "carbon": {
        "grid_g_per_kwh": (_NUMBER, UNSET),
        "region": (str, ""),
        "intensity_query": (str, ""),
        "pue": (_NUMBER_OR_NAME, UNSET),
        "embodied_g": (_NUMBER, UNSET),
        "lifespan_years": (_NUMBER, 4.0),
    },
    "red": {
        "routes": (list, []),
        "max_children": (int, 10),
    },
    "exporter": {
        "listen": (str, "127.0.0.1:9464"),
        "top_processes": (int, 20),
        "tls_cert_file": (str, ""),
        "tls_key_file": (str, ""),
        "basic_auth_user": (str, ""),
        "basic_auth_password_file": (str, ""),
    },
    "history": {
        "dir": (str, ""),  # "": /var/lib/obs-tui/history as root, else $XDG_STATE_HOME/obs-tui/history
        "max_age_days": (_NUMBER, 7.0),
        "max_size_mb": (_NUMBER, 1024.0),
    },
    "slo": [{
        "name": (str, None),
        "objective": (_NUMBER, None),
        "period": (str, "30d"),
        "error_query": (str, ""),   # a ratio SLO: errors and total, both with {{.window}}
        "total_query": (str, ""),
        "histogram": (str, ""),     # or a latency SLO: a histogram's base name,
        "threshold_s": (_NUMBER, 0),  # a bound that must be one of its bucket `le`s,
        "selector": (str, ""),      # and label matchers without braces: job="api"
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
    exporter: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=lambda: {"dir": "", "max_age_days": 7.0,
                                                             "max_size_mb": 1024.0})
    slo: tuple[dict[str, Any], ...] = ()


def _type_name(types) -> str:
    if types is _NUMBER:
        return "a number"
    if types is _NUMBER_OR_NAME:
        return "a number or a name"
    return {str: "a string", int: "an integer", list: "a list", bool: "true or false"}[types]


def _check_value(where: str, key: str, value: Any, types) -> Any:
    # bool is an int subclass in Python; in a config it is never a number.
    if isinstance(value, bool) or not isinstance(value, types):
        raise ConfigError(f"{where}: key '{key}' must be {_type_name(types)}, got {value!r}")
    if types is _NUMBER or (types is _NUMBER_OR_NAME and not isinstance(value, str)):
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
        elif spec[1] is UNSET:
            continue
        else:
            out[key] = spec[1]
    return out


def _check_slo(where: str, at: str, slo: dict) -> None:
    if not 0 < slo["objective"] < 1:
        raise ConfigError(f"{where}: key '{at}.objective' must be a ratio between 0 and 1 "
                          f"(0.999 for 99.9 %), got {slo['objective']}")
    from obs_tui.analysis.slo import duration_s

    try:
        duration_s(slo["period"])
    except ValueError as exc:
        raise ConfigError(f"{where}: key '{at}.period' is {exc}") from None
    ratio = slo["error_query"] or slo["total_query"]
    if ratio and slo["histogram"]:
        raise ConfigError(f"{where}: {at}: give error_query + total_query or histogram + "
                          "threshold_s, not both")
    if slo["histogram"]:
        if slo["histogram"].endswith(("_bucket", "_count", "_sum")):
            raise ConfigError(f"{where}: key '{at}.histogram' is the base name, without "
                              f"_bucket/_count/_sum: {slo['histogram']!r}")
        if slo["threshold_s"] <= 0:
            raise ConfigError(f"{where}: key '{at}.threshold_s' must be a bucket bound in seconds "
                              f"greater than 0, got {slo['threshold_s']:g}")
        return
    for key in ("error_query", "total_query"):
        if not slo[key]:
            raise ConfigError(f"{where}: {at} needs error_query and total_query (or histogram and "
                              f"threshold_s): '{at}.{key}' is missing")
        if "{{.window}}" not in slo[key]:
            raise ConfigError(f"{where}: key '{at}.{key}' must contain {{{{.window}}}} where the "
                              "range goes, as in rate(x[{{.window}}])")
    if slo["selector"] or slo["threshold_s"]:
        raise ConfigError(f"{where}: {at}: selector and threshold_s go with histogram")


def parse(text: str, where: str = "<config>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    data = _check_table(where, "", raw, SCHEMA)
    if data["interval"] <= 0:
        raise ConfigError(f"{where}: key 'interval' must be greater than 0, got {data['interval']}")
    for key in ("timeout_s", "refresh_s"):
        if data["prometheus"][key] <= 0:
            raise ConfigError(f"{where}: key 'prometheus.{key}' must be greater than 0, "
                              f"got {data['prometheus'][key]}")
    for i, slo in enumerate(data["slo"]):
        _check_slo(where, f"slo[{i}]", slo)
    if data["exporter"]["top_processes"] < 1:
        raise ConfigError(f"{where}: key 'exporter.top_processes' must be at least 1, "
                          f"got {data['exporter']['top_processes']}")
    power = data["power"]
    for key in ("min_watts_per_vcpu", "max_watts_per_vcpu", "memory_watts_per_gb"):
        if power[key] < 0:
            raise ConfigError(f"{where}: key 'power.{key}' must be 0 or more watts, got {power[key]}")
    if power["max_watts_per_vcpu"] and power["min_watts_per_vcpu"] > power["max_watts_per_vcpu"]:
        raise ConfigError(f"{where}: key 'power.min_watts_per_vcpu' ({power['min_watts_per_vcpu']}) "
                          f"must not exceed 'power.max_watts_per_vcpu' ({power['max_watts_per_vcpu']})")
    for key in ("routes",):
        for item in data["red"][key]:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigError(f"{where}: key 'red.{key}' must list paths starting with '/', got {item!r}")
    _check_carbon(where, data["carbon"])
    for key in ("max_age_days", "max_size_mb"):
        if data["history"][key] <= 0:
            raise ConfigError(f"{where}: key 'history.{key}' must be greater than 0, "
                              f"got {data['history'][key]}")
    path = None if where == "<config>" else Path(where)
    return Config(path=path, interval=data["interval"], theme=data["theme"],
                  slo_files=tuple(data["slo_files"]), keep_root=data["keep_root"],
                  prometheus=data["prometheus"], power=data["power"], carbon=data["carbon"],
                  red=data["red"], exporter=data["exporter"], history=data["history"],
                  slo=tuple(data["slo"]))


def _check_carbon(where: str, carbon: dict[str, Any]) -> None:
    from obs_tui import data as tables  # the shipped tables; read once, on first use

    region = carbon["region"]
    if region and tables.region_value(region) is None:
        close = tables.close_regions(region)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else (
            "; use 'aws:REGION', 'gcp:REGION', 'azure:REGION' or 'country:ISO3' (see README, Carbon)")
        raise ConfigError(f"{where}: key 'carbon.region': unknown region {region!r}{hint}")
    pue = carbon.get("pue")
    presets = tables.pue_presets()
    if isinstance(pue, str) and pue.lower() not in presets:
        raise ConfigError(f"{where}: key 'carbon.pue' must be a number >= 1 or one of "
                          f"{', '.join(sorted(presets))}, got {pue!r}")
    if isinstance(pue, float) and pue < 1.0:
        raise ConfigError(f"{where}: key 'carbon.pue' must be at least 1.0 (total power / IT power), got {pue}")
    for key in ("grid_g_per_kwh", "embodied_g"):
        if key in carbon and carbon[key] < 0:
            raise ConfigError(f"{where}: key 'carbon.{key}' must not be negative, got {carbon[key]}")
    if carbon["lifespan_years"] <= 0:
        raise ConfigError(f"{where}: key 'carbon.lifespan_years' must be greater than 0, "
                          f"got {carbon['lifespan_years']}")


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
