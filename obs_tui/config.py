"""The TOML config: where it is looked for, what keys it may hold, and their types.

Every problem is a ConfigError whose message names the file, the key and what is wrong;
the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    pass


def user_config_dir() -> Path:
    """$XDG_CONFIG_HOME/obs-tui, ~/.config/obs-tui when it is unset or not absolute (the XDG
    base directory spec says to ignore a relative one)."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    return base / "obs-tui"


SYSTEM_CONFIG = Path("/etc/obs-tui/config.toml")


def search_paths() -> list[Path]:
    paths = []
    env = os.environ.get("OBS_TUI_CONFIG")
    if env:
        paths.append(Path(env))
    paths.append(user_config_dir() / "config.toml")
    paths.append(SYSTEM_CONFIG)
    return paths


def search_paths_text() -> str:
    """The search order in words, for --help, the man page and `config --default`."""
    return (
        "--config FILE, $OBS_TUI_CONFIG, $XDG_CONFIG_HOME/obs-tui/config.toml "
        f"(~/.config/obs-tui/config.toml), {SYSTEM_CONFIG}"
    )


@dataclass(frozen=True)
class Bounds:
    """The values a number may take, inclusive, and its unit for the message."""

    low: float
    high: float
    unit: str = ""

    def problem(self, value: float) -> str:
        if self.low <= value <= self.high:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        shown = value if isinstance(value, int) else f"{value:g}"
        return f"must be from {self.low:g} to {self.high:g}{unit}, got {shown}"


# A tick shorter than 0.1 s costs CPU for nothing (every source is re-read, every pane redrawn);
# one longer than 300 s could let a RAPL counter wrap twice between readings, which no reader
# can tell from once (analysis/attribution.py, counter_delta).
INTERVAL = Bounds(0.1, 300.0, "seconds")
# key -> (type(s), default[, Bounds]). A nested dict is a table; a list [dict] is an array of
# tables. Default None: the key is required. Default UNSET: the key is optional and absent when
# not set (so "not set" differs from any value, e.g. carbon.grid_g_per_kwh). Bounds: the sane
# range of a number (a value outside it is a typo or a unit mistake, never a setting).
_NUMBER = (int, float)
_NUMBER_OR_NAME = (int, float, str)
UNSET = object()
SCHEMA: dict[str, Any] = {
    "interval": (_NUMBER, 1.0, INTERVAL),
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
        "timeout_s": (_NUMBER, 5, Bounds(0.1, 300.0, "seconds")),
        "refresh_s": (_NUMBER, 15, Bounds(0.1, 86400.0, "seconds")),
    },
    "power": {
        "powercap_root": (str, "/sys/class/powercap"),
        "hwmon_root": (str, "/sys/class/hwmon"),
        # The estimate where there is no RAPL; 0 takes the value from the coefficient table.
        "min_watts_per_vcpu": (_NUMBER, 0.0, Bounds(0.0, 1000.0, "watts")),
        "max_watts_per_vcpu": (_NUMBER, 0.0, Bounds(0.0, 1000.0, "watts")),
        "memory_watts_per_gb": (_NUMBER, 0.392, Bounds(0.0, 100.0, "watts")),
    },
    "carbon": {
        "grid_g_per_kwh": (_NUMBER, UNSET, Bounds(0.0, 5000.0, "gCO2e/kWh")),
        "region": (str, ""),
        "intensity_query": (str, ""),
        "pue": (_NUMBER_OR_NAME, UNSET, Bounds(1.0, 5.0, "(total power / IT power)")),
        "embodied_g": (_NUMBER, UNSET, Bounds(0.0, 1e8, "gCO2e")),
        "lifespan_years": (_NUMBER, 4.0, Bounds(0.5, 50.0, "years")),
    },
    "red": {
        "routes": (list, []),
        "max_children": (int, 10, Bounds(1, 10000)),
        # Service names for processes without OTEL_SERVICE_NAME (service_names.py):
        # the first rule whose matchers all match names the process.
        "services": [
            {
                "name": (str, None),
                "exe": (str, ""),  # glob on the executable's path or base name
                "cmdline": (str, ""),  # regular expression searched in the command line
                "port": (int, 0, Bounds(0, 65535)),  # a port it listens on (0: any)
            }
        ],
    },
    "exporter": {
        "listen": (str, "127.0.0.1:9464"),
        "top_processes": (int, 20, Bounds(1, 10000)),
        "tls_cert_file": (str, ""),
        "tls_key_file": (str, ""),
        "basic_auth_user": (str, ""),
        "basic_auth_password_file": (str, ""),
        # exporter-toolkit web-config.yml (TLS, client certificates, bcrypt users), as
        # node_exporter's --web.config.file; instead of the four keys above
        "web_config_file": (str, ""),
    },
    "history": {
        "dir": (str, ""),  # "": /var/lib/obs-tui/history as root, else $XDG_STATE_HOME/obs-tui/history
        "max_age_days": (_NUMBER, 7.0, Bounds(0.01, 3650.0, "days")),
        "max_size_mb": (_NUMBER, 1024.0, Bounds(1.0, 1e7, "MB")),
    },
    "slo": [
        {
            "name": (str, None),
            "objective": (_NUMBER, None),
            "period": (str, "30d"),
            "error_query": (str, ""),  # a ratio SLO: errors and total, both with {{.window}}
            "total_query": (str, ""),
            "histogram": (str, ""),  # or a latency SLO: a histogram's base name,
            "threshold_s": (_NUMBER, 0),  # a bound that must be one of its bucket `le`s,
            "selector": (str, ""),  # and label matchers without braces: job="api"
            "description": (str, ""),
        }
    ],
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
    history: dict[str, Any] = field(
        default_factory=lambda: {"dir": "", "max_age_days": 7.0, "max_size_mb": 1024.0}
    )
    slo: tuple[dict[str, Any], ...] = ()


def _type_name(types) -> str:
    if types is _NUMBER:
        return "a number"
    if types is _NUMBER_OR_NAME:
        return "a number or a name"
    return {str: "a string", int: "an integer", list: "a list", bool: "true or false"}[types]


def _check_value(where: str, key: str, value: Any, types, bounds: Bounds | None = None) -> Any:
    # bool is an int subclass in Python; in a config it is never a number.
    if (isinstance(value, bool) and types is not bool) or not isinstance(value, types):
        raise ConfigError(f"{where}: key '{key}' must be {_type_name(types)}, got {value!r}")
    if isinstance(value, str):
        return value
    if types is _NUMBER or types is _NUMBER_OR_NAME:
        try:
            number = float(value)
        except OverflowError:  # an integer too big for a float
            number = math.inf
        if not math.isfinite(number):  # TOML has nan and inf; no setting means either
            raise ConfigError(f"{where}: key '{key}' must be a finite number, got {value!r}")
        value = number
    if bounds is not None and bounds.problem(value):
        raise ConfigError(f"{where}: key '{key}' {bounds.problem(value)}")
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
            out[key] = _check_value(where, full, value, spec[0], *spec[2:])
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
        raise ConfigError(
            f"{where}: key '{at}.objective' must be a ratio between 0 and 1 "
            f"(0.999 for 99.9 %), got {slo['objective']}"
        )
    from obs_tui.raw import duration_s

    try:
        duration_s(slo["period"])
    except ValueError as exc:
        raise ConfigError(f"{where}: key '{at}.period' is {exc}") from None
    ratio = slo["error_query"] or slo["total_query"]
    if ratio and slo["histogram"]:
        raise ConfigError(
            f"{where}: {at}: give error_query + total_query or histogram + threshold_s, not both"
        )
    if slo["histogram"]:
        if slo["histogram"].endswith(("_bucket", "_count", "_sum")):
            raise ConfigError(
                f"{where}: key '{at}.histogram' is the base name, without "
                f"_bucket/_count/_sum: {slo['histogram']!r}"
            )
        if slo["threshold_s"] <= 0:
            raise ConfigError(
                f"{where}: key '{at}.threshold_s' must be a bucket bound in seconds "
                f"greater than 0, got {slo['threshold_s']:g}"
            )
        return
    for key in ("error_query", "total_query"):
        if not slo[key]:
            raise ConfigError(
                f"{where}: {at} needs error_query and total_query (or histogram and "
                f"threshold_s): '{at}.{key}' is missing"
            )
        if "{{.window}}" not in slo[key]:
            raise ConfigError(
                f"{where}: key '{at}.{key}' must contain {{{{.window}}}} where the "
                "range goes, as in rate(x[{{.window}}])"
            )
    if slo["selector"] or slo["threshold_s"]:
        raise ConfigError(f"{where}: {at}: selector and threshold_s go with histogram")


def url_problem(url: str) -> str:
    """Why `url` cannot be a Prometheus base URL ("" when it can). Never repeats a URL that
    carries credentials."""
    authority = (url.partition("//")[2] if "//" in url else url).partition("/")[0]
    if "@" in authority:  # before parsing, whose errors would repeat the URL
        return (
            "must not carry a password or user name (user:password@ shows in argv, "
            "process lists and logs); use basic_auth_user + basic_auth_password_file"
        )
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"must be http(s)://host[:port], got {url!r}"
        _ = parts.port  # raises ValueError for a port that is not 0-65535
    except ValueError as exc:
        return f"must be http(s)://host[:port], got {url!r} ({exc})"
    return ""


def split_listen(text: str) -> tuple[str, int] | None:
    """ADDR:PORT (IPv6 in brackets) -> (host, port); None when it is not that."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host, int(port)


def _check_prometheus(where: str, prom: dict[str, Any]) -> None:
    """What the [prometheus] settings say on their own; the files they name are load()'s."""
    if prom["url"] and url_problem(prom["url"]):
        raise ConfigError(f"{where}: key 'prometheus.url' {url_problem(prom['url'])}")
    if prom["bearer_token_file"] and prom["basic_auth_user"]:
        raise ConfigError(
            f"{where}: keys 'prometheus.bearer_token_file' and "
            "'prometheus.basic_auth_user': give a bearer token or basic auth, not both"
        )
    for key, needs in (("basic_auth_password_file", "basic_auth_user"), ("key_file", "cert_file")):
        if prom[key] and not prom[needs]:
            raise ConfigError(f"{where}: key 'prometheus.{key}' needs 'prometheus.{needs}'")


def _check_files(where: str, config: Config) -> None:
    """Every file a setting names ([prometheus] secrets and CA, [exporter] TLS and password)
    is a readable file: a missing token is a bad setting, not a Prometheus that refuses us."""
    for table in ("prometheus", "exporter"):
        for key, value in getattr(config, table).items():
            if not key.endswith("_file") or not value:
                continue
            path = Path(value)
            try:  # exists() and is_dir() raise, not answer False, on a directory we cannot enter
                why = (
                    "no such file"
                    if not path.exists()
                    else "is a directory"
                    if path.is_dir()
                    else "not a regular file"
                    if not path.is_file()
                    else ""
                )
                if not why:
                    with path.open("rb"):
                        pass
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
            if why:
                raise ConfigError(f"{where}: key '{table}.{key}': {value}: {why}")


def parse(text: str, where: str = "<config>") -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    data = _check_table(where, "", raw, SCHEMA)
    for i, slo in enumerate(data["slo"]):
        _check_slo(where, f"slo[{i}]", slo)
    _check_prometheus(where, data["prometheus"])
    if split_listen(data["exporter"]["listen"]) is None:
        raise ConfigError(
            f"{where}: key 'exporter.listen' must be ADDR:PORT such as "
            f"{SCHEMA['exporter']['listen'][1]}, got {data['exporter']['listen']!r}"
        )
    for item in data["slo_files"]:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{where}: key 'slo_files' must list file paths or globs, got {item!r}")
    power = data["power"]
    if power["max_watts_per_vcpu"] and power["min_watts_per_vcpu"] > power["max_watts_per_vcpu"]:
        raise ConfigError(
            f"{where}: key 'power.min_watts_per_vcpu' ({power['min_watts_per_vcpu']}) "
            f"must not exceed 'power.max_watts_per_vcpu' ({power['max_watts_per_vcpu']})"
        )
    for key in ("routes",):
        for item in data["red"][key]:
            if not isinstance(item, str) or not item.startswith("/"):
                raise ConfigError(f"{where}: key 'red.{key}' must list paths starting with '/', got {item!r}")
    _check_carbon(where, data["carbon"])
    from obs_tui.service_names import RuleError, rules_from_config

    try:
        rules_from_config(data["red"]["services"])
    except RuleError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    path = None if where == "<config>" else Path(where)
    return Config(
        path=path,
        interval=data["interval"],
        theme=data["theme"],
        slo_files=tuple(data["slo_files"]),
        keep_root=data["keep_root"],
        prometheus=data["prometheus"],
        power=data["power"],
        carbon=data["carbon"],
        red=data["red"],
        exporter=data["exporter"],
        history=data["history"],
        slo=tuple(data["slo"]),
    )


def _check_carbon(where: str, carbon: dict[str, Any]) -> None:
    from obs_tui import data as tables  # the shipped tables; read once, on first use

    region = carbon["region"]
    if region and tables.region_value(region) is None:
        close = tables.close_regions(region)
        hint = (
            f"; did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else (
                "; use 'aws:REGION', 'gcp:REGION', 'azure:REGION' or 'country:ISO3' (see docs/power-and-carbon.md)"
            )
        )
        raise ConfigError(f"{where}: key 'carbon.region': unknown region {region!r}{hint}")
    pue = carbon.get("pue")
    presets = tables.pue_presets()
    if isinstance(pue, str) and pue.lower() not in presets:
        raise ConfigError(
            f"{where}: key 'carbon.pue' must be a number from 1 to 5 or one of "
            f"{', '.join(sorted(presets))}, got {pue!r}"
        )


def _is_file(path: Path) -> bool:
    """is_file() that answers False, not PermissionError, for a path we may not look into."""
    try:
        return path.is_file()
    except OSError:
        return False


def load(flag_path: str | None = None) -> Config:
    """The config from --config, else the first file found on the search path, else defaults."""
    path: Path | None
    if flag_path is not None:
        path = Path(flag_path)
        if not _is_file(path):
            raise ConfigError(f"{path}: config file not found")
    else:
        path = next((p for p in search_paths() if _is_file(p)), None)
        env = os.environ.get("OBS_TUI_CONFIG")
        if env and path != Path(env):
            raise ConfigError(f"{env}: config file not found (from $OBS_TUI_CONFIG)")
        if path is None:
            return parse("", "<config>")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    config = parse(text, str(path))
    _check_files(str(path), config)
    return config
