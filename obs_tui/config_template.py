"""`obs-tui config --default`: the annotated config, generated from config.SCHEMA.

The keys, their order and their defaults come from SCHEMA by walking it (a key added there
appears here with its default); only the one-line explanations live here, in NOTES, keyed by
the dotted name (`[[x]]` tables as `x[]`). The text is a config the parser accepts as it is,
equal to the defaults: keys without a default (not set, or required in an array of tables)
are shown commented out, with an example value from NOTES.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from obs_tui.config import SCHEMA, UNSET, search_paths_text

# dotted key -> explanation, or (explanation, example) for a key that has no default value.
NOTES: dict[str, str | tuple[str, Any]] = {
    "interval": "seconds between refreshes of the console, the agent and snapshot --count "
    "(--interval S, or -d TENTHS as in htop)",
    "theme": "dark, light, mono, or a theme file in $XDG_CONFIG_HOME/obs-tui/themes "
    "(NO_COLOR forces mono; the T key's choice is remembered and wins over this)",
    "slo_files": "Sloth prometheus/v1 or OpenSLO v1 files (globs) with more SLOs",
    "keep_root": "true: stay root after the probes are loaded (see SECURITY.md)",
    "prometheus": "the Prometheus that SLOs, read-only mode and a live grid intensity read",
    "prometheus.url": "base URL, e.g. http://127.0.0.1:9090; empty: no Prometheus",
    "prometheus.bearer_token_file": "file with a bearer token sent with every query",
    "prometheus.basic_auth_user": "basic auth user (with basic_auth_password_file)",
    "prometheus.basic_auth_password_file": "file with the basic auth password",
    "prometheus.ca_file": "CA bundle that signs the server's certificate",
    "prometheus.cert_file": "client certificate (with key_file)",
    "prometheus.key_file": "client certificate's key",
    "prometheus.timeout_s": "seconds every query may take",
    "prometheus.refresh_s": "seconds between SLO and read-only refreshes",
    "power": "where power is read; without RAPL it is estimated per vCPU (Cloud Carbon Footprint)",
    "power.powercap_root": "RAPL zones",
    "power.hwmon_root": "the amd_energy driver, used when powercap has no zones",
    "power.min_watts_per_vcpu": "estimate: watts of an idle vCPU; 0 takes the coefficient table's",
    "power.max_watts_per_vcpu": "estimate: watts of a busy vCPU; 0 takes the coefficient table's",
    "power.memory_watts_per_gb": "estimate: watts per GB of memory",
    "carbon": "gCO2e from power: grid intensity, then PUE (docs/power-and-carbon.md)",
    "carbon.grid_g_per_kwh": ("grid intensity in gCO2e/kWh; not set: region, query or the default", 400),
    "carbon.region": "a region of the shipped table: aws:eu-west-1, gcp:europe-west1, "
    "azure:westeurope, country:FRA",
    "carbon.intensity_query": "PromQL giving the live intensity (a grid-intensity exporter)",
    "carbon.pue": (
        "power usage effectiveness: a number >= 1, or aws, gcp, azure; not set: the region's cloud, else 1.0",
        1.2,
    ),
    "carbon.embodied_g": ("the host's embodied carbon in gCO2e; not set: none counted", 1200000),
    "carbon.lifespan_years": "years the embodied carbon is spread over",
    "red": "eBPF RED (rate, errors, duration) of HTTP servers",
    "red.routes": 'your route patterns, e.g. ["/users/{id}"]: they win over automatic ones',
    "red.max_children": "a path level with more distinct children collapses to *",
    "red.services": "service names for processes without OTEL_SERVICE_NAME: the first rule whose "
    "matchers all match names the process (else name:port)",
    "red.services[].name": ("required: the service name", "billing"),
    "red.services[].exe": ("a glob on the executable's path or base name", "*/billing"),
    "red.services[].cmdline": ("a regular expression searched in the command line", "billing\\.wsgi"),
    "red.services[].port": ("a port the process listens on (0: any)", 8000),
    "exporter": "obs-tui agent and --serve-metrics",
    "exporter.listen": "ADDR:PORT of /metrics (loopback unless you say otherwise)",
    "exporter.top_processes": "per-process series for the N processes with most energy",
    "exporter.tls_cert_file": "with tls_key_file: HTTPS only",
    "exporter.tls_key_file": "the certificate's key",
    "exporter.basic_auth_user": "with basic_auth_password_file: every scrape must authenticate",
    "exporter.basic_auth_password_file": "file with the password scrapes must send",
    "exporter.web_config_file": "an exporter-toolkit web-config.yml (TLS, client certificates, "
    "bcrypt users) instead of the tls_*/basic_auth_* keys",
    "history": "the flight recorder's store (docs/history.md): the agent records every frame, the "
    "console its own run (or reads the agent's)",
    "history.dir": "its directory; empty: /var/lib/obs-tui/history as root, else "
    "$XDG_STATE_HOME/obs-tui/history",
    "history.max_age_days": "frames older than this are dropped",
    "history.max_size_mb": "the store is kept under this size, oldest frames dropped first",
    "slo": "one [[slo]] table per SLO: a ratio (error_query and total_query) or a latency "
    "(histogram and threshold_s)",
    "slo[].name": ("required: the SLO's name", "checkout-availability"),
    "slo[].objective": ("required: a ratio, 0.999 for 99.9 %", 0.999),
    "slo[].period": "the SLO's window",
    "slo[].error_query": (
        "ratio SLO: PromQL of errors per second, {{.window}} where the range goes",
        'sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))',
    ),
    "slo[].total_query": (
        "ratio SLO: PromQL of all requests per second",
        'sum(rate(http_requests_total{job="checkout"}[{{.window}}]))',
    ),
    "slo[].histogram": "latency SLO: a histogram's base name (without _bucket)",
    "slo[].threshold_s": "latency SLO: a bound in seconds that is one of its buckets' le",
    "slo[].selector": 'latency SLO: label matchers without braces, e.g. job="api"',
    "slo[].description": "shown on the SLO's detail screen",
}

WIDTH = 92
PLACEHOLDER = {str: "...", int: 0, list: []}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # TOML basic strings take JSON's escapes; ensure_ascii keeps the file plain ASCII.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def note(key: str) -> tuple[str, Any]:
    """(explanation, example) of a dotted key; example is UNSET when NOTES gives none."""
    entry = NOTES.get(key, "")
    return entry if isinstance(entry, tuple) else (entry, UNSET)


def _comment(text: str) -> list[str]:
    return [
        "# " + line for line in textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False, break_long_words=False)
    ]


def _example(key: str, types) -> Any:
    example = note(key)[1]
    if example is not UNSET:
        return example
    kind = types[0] if isinstance(types, tuple) else types
    return PLACEHOLDER.get(kind, 0)


def _scalars(schema: dict, dotted: str, commented: bool = False) -> list[str]:
    """The scalar keys of one table: `key = default`; a key without a default (not set, or
    required in an array of tables) and every key of a `commented` example table is shown
    commented out, with its default or an example value."""
    lines = []
    for key, spec in schema.items():
        if isinstance(spec, (dict, list)):
            continue
        full = f"{dotted}{key}"
        types, default = spec[0], spec[1]
        bounds = spec[2] if len(spec) > 2 else None
        text = note(full)[0]
        if bounds is not None:
            unit = f" {bounds.unit}" if bounds.unit else ""
            text += f" ({bounds.low:g} to {bounds.high:g}{unit})"
        lines += _comment(text)
        if default is None or default is UNSET or (commented and note(full)[1] is not UNSET):
            lines.append(f"# {key} = {_toml_value(_example(full, types))}")
        elif commented:
            lines.append(f"# {key} = {_toml_value(default)}")
        else:
            lines.append(f"{key} = {_toml_value(default)}")
    return lines


def _tables(schema: dict, path: str) -> list[str]:
    """The sub-tables and arrays of tables of one table, after its scalars (TOML's order)."""
    lines: list[str] = []
    for key, spec in schema.items():
        name = f"{path}{key}"
        if isinstance(spec, dict):
            lines += [""] + _comment(note(name)[0]) + [f"[{name}]"]
            lines += _scalars(spec, f"{name}.")
            lines += _tables(spec, f"{name}.")
        elif isinstance(spec, list):
            # None by default: an example table, commented out.
            lines += [""] + _comment(note(name)[0]) + [f"# [[{name}]]"]
            lines += _scalars(spec[0], f"{name}[].", commented=True)
    return lines


def default_config(version: str = "") -> str:
    """The annotated TOML of every key with its default (what `config --default` prints)."""
    made_by = f"obs-tui {version}" if version else "obs-tui"
    head = _comment(
        f"obs-tui configuration: every key with its default value (`obs-tui config --default`, "
        f"{made_by}). Every key is optional; an unknown key is an error. Looked for in this "
        f"order: {search_paths_text()}. A commented-out key has no default: uncomment it to set "
        "it."
    ) + [""]
    lines = head + _scalars(SCHEMA, "") + _tables(SCHEMA, "")
    return "\n".join(lines) + "\n"


def every_key(schema: dict = SCHEMA, path: str = "") -> list[str]:
    """Every dotted key of the schema (`[[x]]` members as x[].key), tables included."""
    keys = []
    for key, spec in schema.items():
        name = f"{path}{key}"
        keys.append(name)
        if isinstance(spec, dict):
            keys += every_key(spec, f"{name}.")
        elif isinstance(spec, list):
            keys += every_key(spec[0], f"{name}[].")
    return keys
