"""Carbon: the formulas against hand-computed values, the region table, where intensity and PUE
come from, and the engine's carbon join (grams since start, no inf/NaN in the snapshot)."""

import json
import math

import pytest

from obs_tui import config, data
from obs_tui.analysis import carbon as c
from obs_tui.engine import Engine
from obs_tui.model import Frame, PowerSection, ProcessPower, RedSection, ServiceStats
from obs_tui.snapshot import frame_to_json


def power(host=20.0, procs=((10, "web", 5.0), (11, "db", 2.0)), source="estimate", hours=1.0):
    """`hours` of steady power: joules since start = W x 3600 x hours."""
    return PowerSection(
        source,
        host,
        8.0,
        (("package-0", host),),
        tuple(ProcessPower(pid, comm, 1.0, w, w * 3600 * hours) for pid, comm, w in procs),
        host_joules=host * 3600 * hours,
    )


def red(*services):
    return RedSection(
        0,
        tuple(ServiceStats(pid, "web", (80,), int(rps), 0, rps, 0.0, 1.0, 2.0, 3.0) for pid, rps in services),
    )


def settings(**carbon):
    return c.settings_from_config(config.parse(_toml(carbon)).carbon)


def _toml(carbon: dict) -> str:
    return "[carbon]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in carbon.items())


# ---- formulas, by hand ----------------------------------------------------------------------


def test_formulas_against_hand_computed_values():
    # 10 W for an hour is 0.01 kWh; x 400 g/kWh = 4 g; x PUE 1.2 = 4.8 g
    assert c.g_per_h(10.0, 400.0, 1.2) == pytest.approx(4.8)
    # 5 W over 250 requests/s: 5 J/s / 250 /s = 0.02 J each
    assert c.joules_per_request(5.0, 250.0) == pytest.approx(0.02)
    # 1,000 x 0.02 J = 20 J = 20 / 3.6e6 kWh; x 400 x 1.2 = 0.0026667 g
    assert c.g_per_1k_requests(0.02, 400.0, 1.2) == pytest.approx(20 / 3.6e6 * 480)
    assert c.g_per_1k_requests(0.02, 400.0, 1.2) == pytest.approx(0.00266667, rel=1e-5)
    # SCI embodied: 1 t over 4 years of 8766 h = 1e6 / 35064 g per host-hour
    assert c.embodied_g_per_h(1_000_000.0, 4.0) == pytest.approx(28.5193, rel=1e-5)
    assert c.kg_per_day(4.8) == pytest.approx(0.1152)
    # 36 kJ = 0.01 kWh; x 400 x 1.2 = 4.8 g
    assert c.grams(36_000.0, 400.0, 1.2) == pytest.approx(4.8)


def test_no_requests_is_no_figure_never_inf_or_nan():
    assert c.joules_per_request(5.0, 0.0) is None
    assert c.g_per_1k_requests(None, 400.0, 1.0) is None


def test_section_from_hand_made_power_and_red():
    s = settings(grid_g_per_kwh=300, pue=1.1, embodied_g=1_000_000)
    section = c.carbon_section(power(hours=0.5), red((10, 250.0), (12, 40.0)), s.intensity, s)
    # host: 20 W x 1.1 x 300 / 1000 = 6.6 g/h; operational + embodied over 24 h
    assert section.host_g_per_h == pytest.approx(6.6)
    assert section.embodied_g_per_h == pytest.approx(28.5193, rel=1e-5)
    assert section.kg_per_day == pytest.approx((6.6 + 28.5193) * 24 / 1000, rel=1e-5)
    # half an hour at 20 W = 36 kJ = 0.01 kWh; x 1.1 x 300 = 3.3 g
    assert section.host_grams == pytest.approx(3.3)
    assert section.pue == 1.1 and section.grid_g_per_kwh == 300
    web, db = section.processes
    assert (web.pid, web.comm, web.watts, web.rps) == (10, "web", 5.0, 250.0)
    assert web.grams == pytest.approx(0.825)  # 9 kJ = 0.0025 kWh x 1.1 x 300
    assert web.g_per_h == pytest.approx(5.0 * 1.1 * 300 / 1000)  # 1.65
    assert web.joules_per_request == pytest.approx(0.02)
    assert web.g_per_1k_requests == pytest.approx(20 / 3.6e6 * 1.1 * 300)
    # db answers no HTTP: no per-request figure; pid 12 has RED traffic but no attributed power
    assert db.rps is None and db.joules_per_request is None and db.g_per_1k_requests is None
    assert [p.pid for p in section.processes] == [10, 11]
    assert section.power_source == "estimate" and section.intensity_source == "config"


def test_idle_service_has_null_in_json_and_dash_never_inf():
    s = settings(grid_g_per_kwh=300)
    section = c.carbon_section(power(), red((10, 0.0)), s.intensity, s)
    frame = Frame("h", 0.0, 1.0, 0.0, 1.0, (), (), carbon=section)
    doc = json.loads(json.dumps(frame_to_json(frame), allow_nan=False))
    web = doc["carbon"]["processes"][0]
    assert web["rps"] == 0.0 and web["joules_per_request"] is None and web["g_per_1k_requests"] is None
    for key in (
        "intensity_source",
        "intensity_label",
        "pue_source",
        "host_grams",
        "kg_per_day",
        "embodied_g_per_h",
        "power_source",
    ):
        assert key in doc["carbon"]
    assert doc["carbon"]["embodied_g_per_h"] is None


# ---- where the grid intensity and the PUE come from ----------------------------------------


def test_region_table_values_sources_and_years():
    ie = data.region_value("aws:eu-west-1")
    assert (ie.g_per_kwh, ie.where, ie.source, ie.year) == (278.6, "Ireland", "EEA via CCF", None)
    assert ie.label() == "aws:eu-west-1 (EEA via CCF, year n/s)" and ie.cloud == "aws"
    be = data.region_value("gcp:europe-west1")  # Google's 2020 grid figure, as CCF publishes it
    assert (be.g_per_kwh, be.year, be.cloud) == (212.0, 2020, "gcp")
    assert data.region_value("azure:West Europe").g_per_kwh == pytest.approx(328.4)
    assert data.region_value("aws:ap-south-1").year == 2021
    fr = data.region_value("country:FRA")
    assert (fr.g_per_kwh, fr.source, fr.year, fr.cloud) == (56.04, "Ember", 2023, None)
    table = data.grid_table()
    for key, row in table["regions"].items():
        assert key.split(":")[0] in ("aws", "gcp", "azure", "country"), key
        assert row["source"] in table["sources"] and 0 < row["g_per_kwh"] < 1500, key
        assert row["year"] is None or 2015 <= row["year"] <= 2025, key
    assert len([k for k in table["regions"] if k.startswith("aws:")]) >= 25


def test_intensity_in_order_config_region_query_default():
    assert settings(grid_g_per_kwh=123, region="aws:eu-west-1").intensity == c.Intensity(
        123.0, "config", "config carbon.grid_g_per_kwh"
    )
    by_region = settings(region="aws:eu-west-1", intensity_query="grid_intensity")
    assert by_region.intensity.g_per_kwh == 278.6 and by_region.intensity.source == "region"
    assert "EEA via CCF" in by_region.intensity.label
    assert settings(intensity_query="grid_intensity").intensity is None  # the live query decides
    default = settings().intensity
    assert default.source == "default" and default.g_per_kwh == 485.99
    assert default.label.startswith("default: world average, Ember 2022")
    # zero is a value (a fully low-carbon contract), not "not set"
    assert settings(grid_g_per_kwh=0).intensity.g_per_kwh == 0.0


def test_pue_from_config_preset_region_or_one():
    assert (settings(pue=1.4).pue, settings(pue=1.4).pue_source) == (1.4, "config")
    assert (settings(pue="gcp").pue, settings(pue="GCP").pue_source) == (1.1, "preset gcp")
    assert settings(pue="azure").pue == 1.185
    s = settings(region="aws:us-east-1")
    assert (s.pue, s.pue_source) == (1.135, "region aws")
    assert settings(region="azure:westeurope").pue == 1.185
    assert settings(region="aws:us-east-1", pue=1.0).pue == 1.0  # config beats the region's cloud
    assert (settings(region="country:deu").pue, settings().pue_source) == (1.0, "default")


@pytest.mark.parametrize(
    "text, needles",
    [
        ('region = "aws:eu-west-9"', ["carbon.region", "'aws:eu-west-9'", "did you mean", "'aws:eu-west-1'"]),
        ('region = "gcp:europe-west"', ["did you mean", "'gcp:europe-west"]),
        ('region = "moon"', ["carbon.region", "'moon'", "aws:REGION"]),
        ('pue = "ovh"', ["carbon.pue", "from 1 to 5 or one of aws, azure, gcp", "'ovh'"]),
        ("pue = 0.9", ["carbon.pue", "from 1 to 5", "got 0.9"]),
        ("pue = 1e300", ["carbon.pue", "from 1 to 5"]),
        ("grid_g_per_kwh = -1", ["carbon.grid_g_per_kwh", "from 0 to 5000", "got -1"]),
        ("embodied_g = -1", ["carbon.embodied_g", "from 0"]),
        ("lifespan_years = 0", ["carbon.lifespan_years", "from 0.5 to 50 years"]),
    ],
)
def test_bad_carbon_config_is_one_line(text, needles):
    with pytest.raises(config.ConfigError) as err:
        config.parse("[carbon]\n" + text, "/etc/obs-tui/config.toml")
    message = str(err.value)
    assert "\n" not in message and message.startswith("/etc/obs-tui/config.toml: key 'carbon.")
    for needle in needles:
        assert needle in message


# ---- the join ---------------------------------------------------------------------------------


def test_join_needs_power_and_says_when_it_is_estimated():
    join = c.CarbonJoin(settings(grid_g_per_kwh=400, pue=1.0))
    assert join({"red": red()}, 1.0) is None  # no power section: no carbon
    measured = join({"power": power(host=20.0, procs=((10, "web", 10.0),), source="rapl", hours=0.5)}, 1.0)
    assert join.mode == "live"
    # 10 W x 400 g/kWh = 4 g/h: 2 g in half an hour; the host's 20 W: 4 g
    assert measured.processes[0].g_per_h == pytest.approx(4.0)
    assert measured.processes[0].grams == pytest.approx(2.0)
    assert measured.host_grams == pytest.approx(4.0)
    join({"power": power(source="estimate")}, 1.0)
    assert join.mode == "estimate"


def test_live_query_value_or_a_labelled_default():
    answer = [(None, "waiting for the first answer")]
    join = c.CarbonJoin(settings(intensity_query="avg(grid_intensity)"), live=lambda: answer[0])
    waiting = join({"power": power()}, 1.0)
    assert waiting.intensity_source == "default" and waiting.grid_g_per_kwh == 485.99
    assert waiting.intensity_label == (
        "default: world average, Ember 2022 (carbon.intensity_query: waiting for the first answer)"
    )
    answer[0] = (150.0, "")
    live = join({"power": power()}, 1.0)
    assert (live.intensity_source, live.grid_g_per_kwh) == ("query", 150.0)
    assert live.intensity_label == "live: avg(grid_intensity)"
    answer[0] = (150.0, "timed out")  # the last good value stays, and the failure is said
    assert join({"power": power()}, 1.0).intensity_label.endswith("(last answer failed: timed out)")


class PowerOnly:
    """A source whose samples are power sections (the power source's place in the engine)."""

    name = "fakepower"
    mode = "estimate"

    def available(self):
        from obs_tui.model import Capability

        return Capability(True)

    def sample(self, now):
        return power()

    def close(self):
        pass


def test_engine_runs_the_join_after_the_sources_and_isolates_its_failure():
    from obs_tui.engine import Stage

    join = c.CarbonJoin(settings(grid_g_per_kwh=400, pue=1.0))
    broken = {"on": False}

    def carbon(sections, dt):
        if broken["on"]:
            raise ValueError("bad table")
        return join(sections, dt)

    eng = Engine([Stage(PowerOnly(), lambda prev, cur, dt: cur, "power")], joins=[("carbon", carbon)])
    first = eng.tick(10.0)
    assert first.carbon.host_g_per_h == pytest.approx(8.0)  # 20 W x 400 g/kWh
    assert first.source("carbon").mode == "live" and not first.source("carbon").stale
    assert first.source("carbon").join and not first.source("fakepower").join
    broken["on"] = True
    second = eng.tick(11.0)
    status = second.source("carbon")
    assert status.stale and "join failed: internal error (ValueError: bad table)" == status.reason
    assert second.carbon is first.carbon, "a failing join keeps its last section"
    assert second.power is not None and not second.source("fakepower").stale
    assert not math.isnan(second.carbon.host_g_per_h)


def test_engine_join_without_its_inputs_is_off():
    eng = Engine([], joins=[("carbon", c.CarbonJoin(settings()))])
    frame = eng.tick(1.0)
    assert frame.carbon is None and frame.source("carbon").mode == "off"
