"""carbon.intensity_query against a real Prometheus: the value reaches the Carbon section
(through the Prometheus poller, in the Frame and in `snapshot --json`), and a query that
cannot give one number is a one-line reason beside a labelled default."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from obs_tui.analysis import carbon as c
from obs_tui.config import parse
from obs_tui.model import PowerSection, ProcessPower
from obs_tui.pipeline import make_engine
from obs_tui.sources.grid_intensity import GridIntensityQuery
from obs_tui.sources.prometheus import Client
from tests.prometheus_server import prometheus


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    with prometheus(tmp_path_factory.mktemp("prom")) as url:
        yield url


def _power():
    return PowerSection(
        "rapl",
        10.0,
        2.0,
        (("package-0", 10.0),),
        (ProcessPower(7, "web", 1.0, 8.0, 80.0),),
        host_joules=100.0,
    )


def _answer(prom, query):
    live = GridIntensityQuery(Client(prom, timeout_s=5), query)
    try:
        live.wait_ready(10)
        return live()
    finally:
        live.close()


def test_live_value_reaches_the_carbon_section(prom):
    query = "vector(231.5)"  # what a grid-intensity exporter's gauge gives, here constant
    live = GridIntensityQuery(Client(prom, timeout_s=5), query)
    join = c.CarbonJoin(c.settings_from_config({"intensity_query": query}), live)
    try:
        join.wait_ready(10)
        section = join({"power": _power()}, 1.0)
    finally:
        join.close()
    assert (section.intensity_source, section.grid_g_per_kwh) == ("query", 231.5)
    assert section.intensity_label == "live: vector(231.5)"
    assert section.host_g_per_h == pytest.approx(10.0 * 231.5 / 1000)


@pytest.mark.parametrize(
    "query, reason",
    [
        ("absent(vector(1))", "returned no series"),
        (
            'label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")',
            "returned 2 series; aggregate it",
        ),
        ("vector(-5)", "not a gCO2e/kWh figure"),
        ("rate(", "parse error"),
    ],
)
def test_a_query_that_gives_no_single_figure_is_a_reason(prom, query, reason):
    value, why = _answer(prom, query)
    assert value is None and reason in why and "\n" not in why


def test_without_a_prometheus_url_the_default_says_why():
    engine = make_engine(parse('[carbon]\nintensity_query = "grid"\n'), read_only=True)
    try:
        ((field, join),) = engine.joins
        section = join({"power": _power()}, 1.0)
    finally:
        engine.close()
    assert section.intensity_source == "default"
    assert "carbon.intensity_query: prometheus.url is not set" in section.intensity_label


def test_snapshot_json_uses_the_live_query(prom, tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text('[carbon]\nintensity_query = "vector(123.25)"\npue = "gcp"\n')
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "obs_tui",
            "snapshot",
            "--json",
            "--duration",
            "1.5",
            "--config",
            str(conf),
            "--prometheus",
            prom,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    carbon = json.loads(result.stdout)["carbon"]
    assert carbon["intensity_source"] == "query" and carbon["grid_g_per_kwh"] == 123.25
    assert carbon["pue"] == 1.1 and carbon["pue_source"] == "preset gcp"
