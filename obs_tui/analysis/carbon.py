"""Carbon: grams of CO2e from attributed power, grid intensity and PUE. Pure functions.

Operational emissions (the SCI's O = E x I, with the data centre's overhead on top):
    gCO2e/h = W x PUE x I / 1000                 W watts drawn for one hour = W/1000 kWh
Energy per request, for a process that answers HTTP:
    J/request = W / rps                          attributed watts over its request rate
    gCO2e per 1,000 requests = 1000 x J/request / 3.6e6 x PUE x I
Embodied emissions by the SCI method, M = TE x (TR / EL) x (RS / TR): for the whole host (RS = TR)
and one hour reserved (TR = 1 h), M per host-hour = TE / (EL in hours). PUE multiplies only the
operational part: it is the building's overhead on the electricity, not on the hardware.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from obs_tui import data
from obs_tui.model import CarbonSection, PowerSection, ProcessCarbon, ProcessPower, RedSection

J_PER_KWH = 3.6e6
HOURS_PER_YEAR = 365.25 * 24


@dataclass(frozen=True)
class Intensity:
    g_per_kwh: float
    source: str  # "config" | "region" | "query" | "default"
    label: str  # what it is and where it comes from, for the pane and the snapshot


@dataclass(frozen=True)
class CarbonSettings:
    """[carbon] from the config, resolved: where intensity and PUE come from."""

    intensity: Intensity | None  # None: the live query decides (the default until it answers)
    query: str
    pue: float
    pue_source: str  # "config" | "preset aws" | "region aws" | "default"
    embodied_g: float | None  # TE: the host's embodied emissions, grams CO2e
    lifespan_years: float  # EL: its expected lifespan


def grams(joules: float, g_per_kwh: float, pue: float) -> float:
    """Operational gCO2e of an energy: the one conversion every figure here goes through."""
    return joules / J_PER_KWH * pue * g_per_kwh


def g_per_h(watts: float, g_per_kwh: float, pue: float) -> float:
    return grams(watts * 3600.0, g_per_kwh, pue)


def joules_per_request(watts: float, rps: float) -> float | None:
    """None when there are no requests: 'no figure', never inf or NaN."""
    return watts / rps if rps > 0 else None


def g_per_1k_requests(j_per_request: float | None, g_per_kwh: float, pue: float) -> float | None:
    return None if j_per_request is None else grams(1000.0 * j_per_request, g_per_kwh, pue)


def embodied_g_per_h(te_g: float, lifespan_years: float) -> float:
    """SCI's M for one host-hour: TE x (1 h / EL)."""
    return te_g / (lifespan_years * HOURS_PER_YEAR)


def kg_per_day(grams_per_hour: float) -> float:
    return grams_per_hour * 24.0 / 1000.0


def default_intensity(why: str = "") -> Intensity:
    value = data.world_default()
    label = f"default: world average, {value.source} {value.year}" + (f" ({why})" if why else "")
    return Intensity(value.g_per_kwh, "default", label)


def settings_from_config(carbon: Mapping[str, Any]) -> CarbonSettings:
    """Grid intensity from, in order: grid_g_per_kwh; region in the shipped table; the live
    query (intensity None here); the world average, labelled as a default. PUE from pue (a
    number or a cloud's name), else the region's cloud, else 1.0. The config was validated."""
    region = data.region_value(carbon["region"]) if carbon.get("region") else None
    query = carbon.get("intensity_query", "")
    intensity: Intensity | None
    if carbon.get("grid_g_per_kwh") is not None:
        intensity = Intensity(float(carbon["grid_g_per_kwh"]), "config", "config carbon.grid_g_per_kwh")
    elif region is not None:
        intensity = Intensity(region.g_per_kwh, "region", region.label())
    elif query:
        intensity = None
    else:
        intensity = default_intensity()
    presets = data.pue_presets()
    pue_value = carbon.get("pue")
    if isinstance(pue_value, str):
        pue, pue_source = presets[pue_value.lower()], f"preset {pue_value.lower()}"
    elif pue_value is not None:
        pue, pue_source = float(pue_value), "config"
    elif region is not None and region.cloud is not None:
        pue, pue_source = presets[region.cloud], f"region {region.cloud}"
    else:
        pue, pue_source = 1.0, "default"
    embodied = carbon.get("embodied_g")
    return CarbonSettings(
        intensity,
        query,
        pue,
        pue_source,
        float(embodied) if embodied is not None else None,
        float(carbon.get("lifespan_years", 4.0)),
    )


def process_carbon(p: ProcessPower, rps: float | None, g_per_kwh: float, pue: float) -> ProcessCarbon:
    """A process's carbon row: its power row at the grid's intensity, per request when it
    answered requests (`rps` None: not an HTTP service). The flight recorder derives recorded
    carbon rows again with this, rather than storing them."""
    jpr = joules_per_request(p.watts, rps) if rps is not None else None
    return ProcessCarbon(
        p.pid,
        g_per_h(p.watts, g_per_kwh, pue),
        jpr,
        g_per_1k_requests(jpr, g_per_kwh, pue),
        comm=p.comm,
        watts=p.watts,
        grams=grams(p.joules, g_per_kwh, pue),
        rps=rps,
    )


def carbon_section(
    power: PowerSection, red: RedSection | None, intensity: Intensity, settings: CarbonSettings
) -> CarbonSection:
    """One frame's figures. Grams since start are the power section's joules since start at
    this frame's intensity (exact for a fixed intensity; see docs/power-and-carbon.md for a live one)."""
    i, pue = intensity.g_per_kwh, settings.pue
    rps = {s.pid: s.rps for s in red.services} if red is not None else {}
    processes = [process_carbon(p, rps.get(p.pid), i, pue) for p in power.processes]
    host = g_per_h(power.host_watts, i, pue)
    embodied = (
        embodied_g_per_h(settings.embodied_g, settings.lifespan_years)
        if settings.embodied_g is not None
        else None
    )
    return CarbonSection(
        grid_g_per_kwh=i,
        pue=pue,
        host_g_per_h=host,
        processes=tuple(processes),
        intensity_source=intensity.source,
        intensity_label=intensity.label,
        pue_source=settings.pue_source,
        power_source=power.source,
        host_watts=power.host_watts,
        host_grams=grams(power.host_joules, i, pue),
        kg_per_day=kg_per_day(host + (embodied or 0.0)),
        embodied_g_per_h=embodied,
    )


class CarbonJoin:
    """The engine's carbon join: reads the tick's power and red sections and hands back a
    CarbonSection, or None without power. `mode` says whether the power under it was measured.

    `live` (for carbon.intensity_query) returns (the last value or None, a reason when there is
    none or the last answer failed) without blocking: the Prometheus poller owns the I/O."""

    def __init__(
        self, settings: CarbonSettings, live: Callable[[], tuple[float | None, str]] | None = None
    ) -> None:
        self.settings = settings
        self.live = live
        self.mode = "live"

    def intensity(self) -> Intensity:
        if self.settings.intensity is not None:
            return self.settings.intensity
        value, why = self.live() if self.live is not None else (None, "no Prometheus")
        if value is None:
            return default_intensity(f"carbon.intensity_query: {why or 'no value yet'}")
        label = f"live: {self.settings.query}" + (f" (last answer failed: {why})" if why else "")
        return Intensity(value, "query", label)

    def __call__(self, sections: Mapping[str, Any], dt: float) -> CarbonSection | None:
        power: PowerSection | None = sections.get("power")
        if power is None:
            return None
        self.mode = "live" if power.source == "rapl" else "estimate"
        return carbon_section(power, sections.get("red"), self.intensity(), self.settings)

    def wait_ready(self, timeout_s: float) -> None:
        """For `snapshot` (Engine.wait_ready): the live query's first answer before the frame."""
        wait_ready = getattr(self.live, "wait_ready", None)
        if wait_ready is not None:
            wait_ready(timeout_s)

    def close(self) -> None:
        close = getattr(self.live, "close", None)
        if close is not None:
            close()
