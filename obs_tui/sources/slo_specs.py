"""Where SLOs come from, and the one PromQL query that reads all windows of each.

Four origins, one SloSpec each:
- `[[slo]]` in the config: a ratio SLO (error_query / total_query with `{{.window}}`) or a
  latency SLO (a histogram, a threshold that must be one of its bucket `le`s, a selector);
- `slo_files` globs: Sloth `prometheus/v1` files (objective in percent, events or raw SLIs)
  and OpenSLO v1 `SLO` documents with a `ratioMetric` indicator (inline or `indicatorRef`);
- discovered in Prometheus with no config (sources/slo.py asks): Autometrics objectives
  (`function_calls_total` / `function_calls_duration_seconds_*` with `objective_name`) and
  Sloth recording rules (`slo:sli_error:ratio_rate*` with `sloth_id`).

Each spec becomes a single instant query: a union (`or`) of every window's errors and totals,
each labelled by `label_replace` with `obs_kind` and `obs_window`, so one HTTP request per SLO
reads the 5m … 3d windows and the period.
"""

from __future__ import annotations

import glob
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obs_tui.config import Config, ConfigError
from obs_tui.raw import WINDOWS, duration_s
from obs_tui.sources.prometheus import PrometheusError

TEMPLATE = "{{.window}}"


@dataclass(frozen=True)
class SloSpec:
    name: str
    source: str  # "config" | "sloth" | "openslo" | "autometrics"
    objective: float | None  # None: read from Prometheus (Sloth recording rules)
    period: str
    error_query: str = ""  # templates with {{.window}}; for recording rules: unused
    total_query: str = ""
    sloth_id: str = ""  # a Sloth SLO whose recording rules are already in Prometheus
    description: str = ""
    # latency SLOs: the histogram, its threshold and selector; the bucket is checked at run time
    histogram: str = ""
    threshold_s: float = 0.0
    selector: str = ""

    @property
    def windows(self) -> tuple[str, ...]:
        return WINDOWS if self.period in WINDOWS else (*WINDOWS, self.period)


# ---- PromQL -------------------------------------------------------------------------------


def _esc(value: str) -> str:
    """A label value inside PromQL double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labelled(expr: str, kind: str, window: str) -> str:
    return (
        f'label_replace(label_replace({expr}, "obs_kind", "{kind}", "", ""), '
        f'"obs_window", "{window}", "", "")'
    )


def fill(template: str, window: str) -> str:
    return template.replace(TEMPLATE, window)


def latency_queries(histogram: str, selector: str, le: str) -> tuple[str, str]:
    """(error_query, total_query) templates: slower than the bucket = all - within the bucket."""
    sel = f"{selector}," if selector else ""
    total = f"sum(rate({histogram}_count{{{selector}}}[{TEMPLATE}]))"
    good = f'sum(rate({histogram}_bucket{{{sel}le="{le}"}}[{TEMPLATE}]))'
    return f"({total} - {good})", total


def window_query(spec: SloSpec) -> str:
    """The one instant query for all windows of a spec (its series carry obs_kind/obs_window)."""
    if spec.sloth_id:
        sid = _esc(spec.sloth_id)
        rates = (
            f'label_replace(label_replace({{__name__=~"slo:sli_error:ratio_rate.+", '
            f'sloth_id="{sid}"}}, "obs_kind", "ratio", "", ""), '
            f'"obs_window", "$1", "__name__", "slo:sli_error:ratio_rate(.+)")'
        )
        objective = _labelled(f'slo:objective:ratio{{sloth_id="{sid}"}}', "objective", "")
        period = _labelled(f'slo:time_period:days{{sloth_id="{sid}"}}', "period_days", "")
        return f"{rates} or {objective} or {period}"
    parts = []
    for window in spec.windows:
        parts.append(_labelled(f"sum({fill(spec.error_query, window)})", "errors", window))
        parts.append(_labelled(f"sum({fill(spec.total_query, window)})", "total", window))
    return " or ".join(parts)


def burn_1h_query(spec: SloSpec, objective: float, label: str) -> str:
    """The 1 h burn rate of a spec as one labelled series (for the range query of sparklines)."""
    budget = f"{1.0 - objective:.12g}"
    if spec.sloth_id:
        ratio = f'max(slo:sli_error:ratio_rate1h{{sloth_id="{_esc(spec.sloth_id)}"}})'
    else:
        ratio = f"((sum({fill(spec.error_query, '1h')}) or vector(0)) / sum({fill(spec.total_query, '1h')}))"
    return f'label_replace({ratio} / {budget}, "obs_slo", "{label}", "", "")'


def parse_result(
    rows: list[dict],
) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[str, float]]:
    """(errors, totals, ratios, extras) by window from a window_query answer."""
    out: dict[str, dict[str, float]] = {"errors": {}, "total": {}, "ratio": {}, "extra": {}}
    try:
        for row in rows:
            labels = row.get("metric", {})
            kind, window = labels.get("obs_kind", ""), labels.get("obs_window", "")
            value = float(row["value"][1])
            if not isinstance(kind, str) or not isinstance(window, str):
                raise TypeError("labels that are not strings")
            if kind in ("objective", "period_days"):
                out["extra"][kind] = value
            elif kind in out and window:
                out[kind][window] = value
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        # Not what Prometheus answers to an instant query: say so on the SLO's row.
        raise PrometheusError("malformed answer (unexpected JSON in the query result)") from None
    return out["errors"], out["total"], out["ratio"], out["extra"]


# ---- config and files ---------------------------------------------------------------------


def _check_period(where: str, period: str) -> str:
    try:
        duration_s(period)
    except ValueError as exc:
        raise ConfigError(f"{where}: period {exc}") from None
    return period


def _check_templates(where: str, *queries: str) -> None:
    for q in queries:
        if TEMPLATE not in q:
            raise ConfigError(f"{where}: query must contain {TEMPLATE} where the window goes: {q[:60]!r}")


def from_config(config: Config) -> list[SloSpec]:
    specs = []
    for slo in config.slo:
        common = dict(
            name=slo["name"],
            source="config",
            objective=slo["objective"],
            period=slo["period"],
            description=slo["description"],
        )
        if slo["histogram"]:
            le = f"{slo['threshold_s']:g}"
            err, total = latency_queries(slo["histogram"], slo["selector"], le)
            specs.append(
                SloSpec(
                    error_query=err,
                    total_query=total,
                    histogram=slo["histogram"],
                    threshold_s=slo["threshold_s"],
                    selector=slo["selector"],
                    **common,
                )
            )
        else:
            specs.append(SloSpec(error_query=slo["error_query"], total_query=slo["total_query"], **common))
    return specs


def load_files(patterns: tuple[str, ...] | list[str], where: str = "config") -> list[SloSpec]:
    """Sloth prometheus/v1 and OpenSLO v1 SLOs from the files the globs match."""
    import yaml

    specs: list[SloSpec] = []
    for pattern in patterns:
        paths = sorted(glob.glob(pattern))
        if not paths:
            raise ConfigError(f"{where}: slo_files: nothing matches {pattern!r}")
        docs: list[tuple[str, dict]] = []
        for path in paths:
            try:
                loaded = list(yaml.safe_load_all(Path(path).read_text()))
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read SLO file: {exc}") from None
            except yaml.YAMLError as exc:
                first = " ".join(str(exc).split())[:120]
                raise ConfigError(f"{path}: not valid YAML: {first}") from None
            docs.extend((path, d) for d in loaded if d is not None)
        indicators = {
            d.get("metadata", {}).get("name"): d
            for _, d in docs
            if isinstance(d, dict) and d.get("kind") == "SLI"
        }
        for path, doc in docs:
            if not isinstance(doc, dict):
                raise ConfigError(f"{path}: an SLO document must be a mapping")
            if doc.get("version") == "prometheus/v1":
                specs.extend(_sloth(path, doc))
            elif str(doc.get("apiVersion", "")).startswith("openslo/v1"):
                if doc.get("kind") == "SLO":
                    specs.append(_openslo(path, doc, indicators))
                elif doc.get("kind") not in (
                    "SLI",
                    "Service",
                    "AlertPolicy",
                    "AlertCondition",
                    "AlertNotificationTarget",
                    "DataSource",
                ):
                    raise ConfigError(f"{path}: OpenSLO kind {doc.get('kind')!r} is not supported")
            else:
                raise ConfigError(
                    f"{path}: neither Sloth (version: prometheus/v1) nor OpenSLO (apiVersion: openslo/v1)"
                )
    return specs


def _get(path: str, doc: Any, *keys: str, kind: type = str) -> Any:
    value = doc
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"{path}: missing {'.'.join(keys)}")
        value = value[key]
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{path}: {'.'.join(keys)} must be {kind.__name__}, got {value!r}")
    return value


def _objective(path: str, value: float, what: str) -> float:
    if not 0 < value < 1 or math.isnan(value):
        raise ConfigError(f"{path}: {what} must be between 0 and 100 % exclusive, got {value}")
    return value


def _sloth(path: str, doc: dict) -> list[SloSpec]:
    service = _get(path, doc, "service")
    out = []
    for i, slo in enumerate(_get(path, doc, "slos", kind=list)):
        at = f"{path}: slos[{i}]"
        name = _get(at, slo, "name")
        objective = _objective(at, round(_get(at, slo, "objective", kind=float) / 100.0, 12), "objective")
        sli = _get(at, slo, "sli", kind=dict)
        if "events" in sli:
            err = _get(at, sli, "events", "error_query")
            total = _get(at, sli, "events", "total_query")
        elif "raw" in sli:
            # The raw SLI is an error ratio already; dividing by 1 keeps the one shape of query.
            err, total = _get(at, sli, "raw", "error_ratio_query"), "vector(1)"
        else:
            raise ConfigError(f"{at}: sli must have events or raw (Sloth plugins are not supported)")
        _check_templates(at, err)
        if total != "vector(1)":
            _check_templates(at, total)
        period = str(doc.get("period") or slo.get("period") or "30d")
        out.append(
            SloSpec(
                name=f"{service}-{name}",
                source="sloth",
                objective=objective,
                period=_check_period(at, period),
                error_query=err,
                total_query=total,
                description=str(slo.get("description", "")),
            )
        )
    return out


def _openslo(path: str, doc: dict, indicators: dict) -> SloSpec:
    name = _get(path, doc, "metadata", "name")
    at = f"{path}: SLO {name}"
    spec = _get(at, doc, "spec", kind=dict)
    if "indicator" in spec:
        indicator = spec["indicator"]
    elif "indicatorRef" in spec:
        indicator = indicators.get(spec["indicatorRef"])
        if indicator is None:
            raise ConfigError(f"{at}: indicatorRef {spec['indicatorRef']!r} names no SLI in slo_files")
    else:
        raise ConfigError(f"{at}: spec needs indicator or indicatorRef")
    ratio = _get(at, indicator, "spec", "ratioMetric", kind=dict)

    def query(part: str) -> str:
        source = _get(at, ratio, part, "metricSource", kind=dict)
        if str(source.get("type", "Prometheus")).lower() != "prometheus":
            raise ConfigError(f"{at}: ratioMetric.{part} is not a Prometheus metric source")
        q = _get(at, source, "spec", "query")
        if TEMPLATE in q:
            return q
        if ratio.get("counter", True) is not True:
            raise ConfigError(f"{at}: a gauge ratioMetric needs {TEMPLATE} in its queries")
        return f"sum(rate({q}[{TEMPLATE}]))"  # a counter selector: rate it per window

    total = query("total")
    if "bad" in ratio:
        err = query("bad")
    elif "good" in ratio:
        err = f"({total} - {query('good')})"
    else:
        raise ConfigError(f"{at}: ratioMetric needs good or bad beside total")
    objectives = _get(at, spec, "objectives", kind=list)
    if not objectives or not isinstance(objectives[0], dict):
        raise ConfigError(f"{at}: objectives must list at least one target")
    first = objectives[0]
    if "target" in first:
        objective = _objective(at, _get(at, first, "target", kind=float), "target")
    else:
        objective = _objective(
            at, round(_get(at, first, "targetPercent", kind=float) / 100.0, 12), "targetPercent"
        )
    windows = spec.get("timeWindow") or [{"duration": "30d"}]
    period = _check_period(at, str(_get(at, windows[0], "duration")))
    return SloSpec(
        name=name,
        source="openslo",
        objective=objective,
        period=period,
        error_query=err,
        total_query=total,
        description=str(spec.get("description", "")),
    )


def load_all(config: Config) -> list[SloSpec]:
    """Every SLO the config names, files included; ConfigError (one line) on any bad one."""
    specs = from_config(config) + load_files(config.slo_files, str(config.path or "config"))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ConfigError(f"{config.path or 'config'}: two SLOs are named {spec.name!r}")
        seen.add(spec.name)
    return specs


# ---- discovery ----------------------------------------------------------------------------

AUTOMETRICS_MATCHERS = [
    'function_calls_total{objective_name!=""}',
    'function_calls_duration_seconds_count{objective_name!=""}',
]
SLOTH_MATCHERS = ['slo:objective:ratio{sloth_id!=""}']


def discovered(series: list[dict]) -> list[SloSpec]:
    """SLOs from the label sets of AUTOMETRICS_MATCHERS and SLOTH_MATCHERS series."""
    specs: dict[str, SloSpec] = {}
    for labels in series:
        metric = labels.get("__name__", "")
        if metric == "slo:objective:ratio" and labels.get("sloth_id"):
            sid = labels["sloth_id"]
            specs.setdefault(
                sid, SloSpec(name=sid, source="sloth", objective=None, period="30d", sloth_id=sid)
            )
            continue
        name, pct = labels.get("objective_name", ""), labels.get("objective_percentile", "")
        try:
            objective = round(float(pct) / 100.0, 12)  # 99.9 / 100 is 0.9990000000000001
        except ValueError:
            continue
        if not name or not 0 < objective < 1:
            continue
        sel = f'objective_name="{_esc(name)}",objective_percentile="{_esc(pct)}"'
        if metric == "function_calls_total":
            specs.setdefault(
                f"{name} success",
                SloSpec(
                    name=f"{name} success",
                    source="autometrics",
                    objective=objective,
                    period="30d",
                    error_query=f'sum(rate(function_calls_total{{{sel},result="error"}}[{TEMPLATE}]))',
                    total_query=f"sum(rate(function_calls_total{{{sel}}}[{TEMPLATE}]))",
                ),
            )
        elif metric == "function_calls_duration_seconds_count" and labels.get("objective_latency_threshold"):
            threshold = labels["objective_latency_threshold"]
            lsel = f'{sel},objective_latency_threshold="{_esc(threshold)}"'
            err, total = latency_queries("function_calls_duration_seconds", lsel, threshold)
            specs.setdefault(
                f"{name} latency",
                SloSpec(
                    name=f"{name} latency",
                    source="autometrics",
                    objective=objective,
                    period="30d",
                    error_query=err,
                    total_query=total,
                    histogram="function_calls_duration_seconds",
                    threshold_s=float(threshold),
                    selector=lsel,
                ),
            )
    return list(specs.values())


def with_bucket(spec: SloSpec, le: str) -> SloSpec:
    """The latency spec querying the bucket exactly as Prometheus spells its le ("0.3", "0.30")."""
    from dataclasses import replace

    err, total = latency_queries(spec.histogram, spec.selector, le)
    return replace(spec, error_query=err, total_query=total)


def bucket_problem(spec: SloSpec, les: list[str]) -> tuple[str, str]:
    """(le to use, problem): the threshold must equal one of the histogram's bucket bounds."""
    for le in les:
        try:
            if math.isclose(float(le), spec.threshold_s, rel_tol=1e-9):
                return le, ""
        except ValueError:
            continue
    shown = ", ".join(sorted((x for x in les if x != "+Inf"), key=float)[:8]) or "none found"
    return "", (f"threshold {spec.threshold_s:g}s is not a bucket of {spec.histogram} (le: {shown})")
