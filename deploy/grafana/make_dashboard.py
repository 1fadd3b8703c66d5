"""Writes obs-tui.json, the Grafana dashboard for obs-tui's metrics: python3 make_dashboard.py

The JSON is what operators import; this script is where it is edited (tests/test_metric_model.py
checks the two agree, that Grafana's schema library reads every key, and runs every query
against a real Prometheus fed by a real agent).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent / "obs-tui.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", instance=~"$instance"'
HTTP = f'http_server_request_duration_seconds_count{{{SEL}, service_name=~"$service"}}'
BUCKET = f'http_server_request_duration_seconds_bucket{{{SEL}, service_name=~"$service"}}'
SLO = 'service_name=~"$service"'


def _panel(
    kind: str,
    title: str,
    description: str,
    unit: str,
    targets: list[tuple[str, str]],
    x: int,
    y: int,
    w: int = 8,
    h: int = 8,
    **options,
) -> dict:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options,
        "targets": [
            {"datasource": DS, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _row(title: str, y: int) -> dict:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
    }


def _variable(name: str, label: str, query: str) -> dict:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".+",
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard() -> dict:
    rate = "[$__rate_interval]"
    errors = f'sum by (service_name) (rate({HTTP[:-1]}, http_response_status_code=~"5.."}}{rate}))'
    total = f"sum by (service_name) (rate({HTTP}{rate}))"
    panels = [
        _row("Requests (RED, from the eBPF probe)", 0),
        _panel(
            "timeseries",
            "Requests per second",
            "Responses per second by service, every instance added up.",
            "reqps",
            [(total, "{{service_name}}")],
            0,
            1,
        ),
        _panel(
            "timeseries",
            "Error ratio (5xx)",
            "Share of responses with a 5xx status.",
            "percentunit",
            [(f"({errors} or {total} * 0) / {total}", "{{service_name}}")],
            8,
            1,
        ),
        _panel(
            "timeseries",
            "Latency p50 / p95 / p99",
            "First byte of the request read to the "
            "first byte of the response written, from the semconv buckets.",
            "s",
            [
                (
                    f"histogram_quantile({q}, sum by (le, service_name) (rate({BUCKET}{rate})))",
                    f"{{{{service_name}}}} p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            16,
            1,
        ),
        _panel(
            "table",
            "Busiest routes",
            "Requests per second by route (routes are normalised by the agent: /users/{id}).",
            "reqps",
            [
                (
                    f"topk(15, sum by (service_name, http_request_method, http_route, url_scheme) "
                    f"(rate({HTTP}{rate})))",
                    "",
                )
            ],
            0,
            9,
            w=24,
            h=8,
        ),
        _row("Power and energy", 17),
        _panel(
            "timeseries",
            "Host power",
            "The host's power: RAPL where the CPU has it, else an estimate (source label).",
            "watt",
            [(f"obs_host_power_watts{{{SEL}}}", "{{instance}} ({{source}})")],
            0,
            18,
        ),
        _panel(
            "timeseries",
            "Power by zone",
            "The parts the host figure is the sum of.",
            "watt",
            [(f"sum by (instance, zone) (obs_host_zone_power_watts{{{SEL}}})", "{{instance}} {{zone}}")],
            8,
            18,
        ),
        _panel(
            "timeseries",
            "Top processes by power",
            "CPU energy attributed to each process, as a rate (joules per second are watts).",
            "watt",
            [
                (
                    f"topk(10, sum by (instance, pid, comm) "
                    f"(rate(obs_process_cpu_joules_total{{{SEL}}}{rate})))",
                    "{{comm}} ({{pid}}) {{instance}}",
                )
            ],
            16,
            18,
        ),
        _panel(
            "stat",
            "Host energy over the range",
            "Energy the hosts used in the dashboard's time range.",
            "kwatth",
            [(f"sum(increase(obs_host_energy_joules_total{{{SEL}}}[$__range])) / 3.6e6", "")],
            0,
            26,
            w=6,
            h=5,
        ),
        _row("Carbon", 31),
        _panel(
            "timeseries",
            "Host carbon, grams CO2e per hour",
            "Operational emissions (PUE included) of each host.",
            "none",
            [(f"rate(obs_host_carbon_grams_total{{{SEL}}}{rate}) * 3600", "{{instance}}")],
            0,
            32,
        ),
        _panel(
            "timeseries",
            "Top processes by carbon, grams CO2e per hour",
            "",
            "none",
            [
                (
                    f"topk(10, sum by (instance, pid, comm) "
                    f"(rate(obs_process_carbon_grams_total{{{SEL}}}{rate}))) * 3600",
                    "{{comm}} ({{pid}}) {{instance}}",
                )
            ],
            8,
            32,
        ),
        _panel(
            "stat",
            "Grid carbon intensity",
            "The grid intensity each agent uses.",
            "none",
            [(f"obs_grid_intensity_grams_per_kilowatt_hour{{{SEL}}}", "{{instance}} g/kWh")],
            16,
            32,
            h=8,
        ),
        _row("SLOs (deploy/prometheus/obs-tui-rules.yml)", 40),
        _panel(
            "timeseries",
            "Error budget burn rate",
            "1 = spending the 30-day budget exactly; "
            "pages at 14.4 (1 h and 5 m) or 6 (6 h and 30 m). Availability: no 5xx (99.9 %); "
            "latency: within 0.5 s (99 %).",
            "none",
            [
                (f"obs:http_server_errors:burnrate{w}{{{SLO}}}", f"{{{{service_name}}}} availability {w}")
                for w in ("5m", "1h", "6h")
            ]
            + [
                (f"obs:http_server_slow:burnrate{w}{{{SLO}}}", f"{{{{service_name}}}} latency {w}")
                for w in ("5m", "1h", "6h")
            ],
            0,
            41,
            w=12,
        ),
        _panel(
            "bargauge",
            "Error budget remaining (30 d)",
            "1 is all of it; below 0 the objective is missed.",
            "percentunit",
            [
                (
                    f"obs:http_server_availability:error_budget_remaining{{{SLO}}}",
                    "{{service_name}} availability",
                ),
                (f"obs:http_server_latency:error_budget_remaining{{{SLO}}}", "{{service_name}} latency"),
            ],
            12,
            41,
            w=12,
        ),
    ]
    for i, panel in enumerate(panels, start=1):
        panel["id"] = i
    return {
        "uid": "obs-tui-overview",
        "title": "obs-tui: RED, power, carbon, SLOs",
        "description": "The metrics of obs-tui agents (docs/metrics.md).",
        "tags": ["obs-tui", "ebpf", "energy", "slo"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                },
                _variable("job", "Job", "label_values(obs_build_info, job)"),
                _variable("instance", "Instance", 'label_values(obs_build_info{job=~"$job"}, instance)'),
                _variable(
                    "service",
                    "Service",
                    "label_values(http_server_request_duration_seconds_count"
                    '{job=~"$job", instance=~"$instance"}, service_name)',
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n")
