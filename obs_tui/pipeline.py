"""The assembly: from the config, the stages (each source with its analysis, its Frame field
and what its section carries), the joins, the sinks and the shared Prometheus client, wired
into an Engine.

Every surface (the console, `snapshot`, the agent, the screenshot tool, the benchmarks) builds
its engine here, so what a Frame holds is decided in one place. Optional abilities of what is
wired in (engine.Reporting, Fleet, WaitsReady...) are found once, when the Engine is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from obs_tui.analysis.attribution import carry_totals, fold_window, power_section
from obs_tui.analysis.processes import process_samples
from obs_tui.analysis.prom_power import prom_power_section
from obs_tui.analysis.prom_red import prom_red_section
from obs_tui.analysis.red import RedAnalysis, keep_gone
from obs_tui.analysis.slo import slo_section
from obs_tui.config import Config, ConfigError
from obs_tui.engine import Engine, Join, Reporting, Service, Stage
from obs_tui.model import Capability, Frame
from obs_tui.sources.base import Source

if TYPE_CHECKING:
    from obs_tui.sources.power import PowerSource
    from obs_tui.sources.prometheus import Client
    from obs_tui.sources.slo_specs import SloSpec

Notice = Callable[[str], None]


def _quiet(line: str) -> None:
    """The default notice: the console owns the terminal and prints none."""


# ---- stages: one per kind of source ----------------------------------------------------------


def procs_stage(source: Source) -> Stage:
    return Stage(source, process_samples, "processes")


def red_stage(source: Source) -> Stage:
    # its own analysis object: what it remembers between ticks is this stream's; the window
    # keeps what a pruned process counted
    return Stage(source, RedAnalysis(), "red", keep=keep_gone)


def power_stage(source: Source) -> Stage:
    # joules since start are carried from tick to tick; a window folds ticks in, since two
    # RAPL readings far apart cannot be compared (the counter can wrap in between)
    return Stage(source, power_section, "power", carry=carry_totals, fold=fold_window)


def prom_red_stage(source: Source) -> Stage:
    return Stage(source, prom_red_section, "red")


def prom_power_stage(source: Source) -> Stage:
    # no carry: Prometheus holds the history, and its joules are the frame's window
    return Stage(source, prom_power_section, "power")


def slo_stage(source: Source) -> Stage:
    return Stage(source, slo_section, "slo")


def stage(source: Source) -> Stage:
    """The stage of one of obs-tui's own sources, by its class (for tests and tools that
    build a source by hand)."""
    from obs_tui.sources.power import PowerSource
    from obs_tui.sources.procs import ProcsSource
    from obs_tui.sources.readonly import PromPowerSource, PromRedSource
    from obs_tui.sources.red import RedSource
    from obs_tui.sources.slo import SloSource

    kinds: tuple[tuple[type[Any], Callable[[Source], Stage]], ...] = (
        (ProcsSource, procs_stage),
        (RedSource, red_stage),
        (PowerSource, power_stage),
        (PromRedSource, prom_red_stage),
        (PromPowerSource, prom_power_stage),
        (SloSource, slo_stage),
    )
    for kind, build in kinds:
        if isinstance(source, kind):
            return build(source)
    raise TypeError(f"no stage for {type(source).__name__}: build a Stage for it")


def stages(sources: Iterable[Source]) -> list[Stage]:
    return [stage(source) for source in sources]


# ---- the parts the assembly is made of --------------------------------------------------------


def power_source(config: Config, notice: Notice = _quiet) -> PowerSource:
    from obs_tui.sources.power import PowerSource

    power = config.power
    overrides = {
        key: power[key] for key in ("min_watts_per_vcpu", "max_watts_per_vcpu", "memory_watts_per_gb")
    }
    return PowerSource(power["powercap_root"], power["hwmon_root"], overrides, notice=notice)


def prometheus_client(config: Config) -> tuple[Client | None, str]:
    """The one Prometheus client every reader shares (its health is the `prometheus`
    capability), or (None, why not) without a URL or with settings that cannot work."""
    from obs_tui.sources.prometheus import Client, PrometheusConfigError

    if not config.prometheus["url"]:
        return None, "prometheus.url is not set (--prometheus URL)"
    try:
        return Client.from_config(config.prometheus), ""
    except PrometheusConfigError as exc:
        return None, str(exc)


def load_slos(config: Config) -> list[SloSpec]:
    """The SLOs of [[slo]] and slo_files; a bad one is a ConfigError (one line, exit 2)."""
    from obs_tui.sources.slo_specs import load_all

    return load_all(config)


def readonly_stages(client: Client, refresh_s: float) -> list[Stage]:
    """The fleet's panes from its metrics, nothing local (this laptop's processes are not the
    fleet's)."""
    from obs_tui.sources.readonly import PromPowerSource, PromRedSource

    return [
        prom_red_stage(PromRedSource(client, refresh_s)),
        prom_power_stage(PromPowerSource(client, refresh_s)),
    ]


def local_stages(config: Config, notice: Notice = _quiet) -> list[Stage]:
    """This host's RED (eBPF) and power."""
    from obs_tui.service_names import rules_from_config
    from obs_tui.sources.red import RedSource
    from obs_tui.sources.service_identity import ServiceNaming

    naming = ServiceNaming(rules_from_config(config.red["services"]))
    red = RedSource(
        routes=config.red["routes"],
        max_children=config.red["max_children"],
        notice=notice,
        naming=naming,
    )
    return [red_stage(red), power_stage(power_source(config, notice))]


def make_engine(
    config: Config,
    read_only: bool,
    notice: Notice = _quiet,
    slos: Sequence[SloSpec] | None = None,
    sinks: Iterable[Callable[[Frame], None]] = (),
    with_slos: bool = True,
) -> Engine:
    """Stages and capabilities for this host, wired into an Engine. Runs off the UI thread.
    `notice` gets one-line notices (the kernel-headers fallback); the console, which owns the
    terminal, passes none. `slos`: the SloSpecs already loaded (load_slos), else loaded here;
    with_slos=False for the agent, which publishes no SLOs (they are Prometheus's own data).
    Every reader of Prometheus (SLOs, read-only panes, the grid intensity) shares one client."""
    from obs_tui import doctor
    from obs_tui.analysis.carbon import CarbonJoin, settings_from_config
    from obs_tui.sources.procs import ProcsSource

    checks = doctor.run_checks(config, read_only=read_only, compile_probe=False, probe_prometheus=False)
    client, why_not = prometheus_client(config)
    refresh = float(config.prometheus["refresh_s"])
    wired: list[Stage]
    if read_only and client is not None:
        wired = readonly_stages(client, refresh)
    elif read_only and config.prometheus["url"]:
        raise ConfigError(why_not)
    else:
        wired = [procs_stage(ProcsSource())]
    if not read_only:
        wired += local_stages(config, notice)
    if client is not None and with_slos:
        from obs_tui.sources.slo import SloSource

        specs = list(load_slos(config) if slos is None else slos)
        wired.append(slo_stage(SloSource(client, specs, refresh)))
    carbon = settings_from_config(config.carbon)
    live: Callable[[], tuple[float | None, str]] | None = None
    grid = None
    if carbon.intensity is None and client is None:
        live = lambda: (None, why_not)  # noqa: E731
    elif carbon.intensity is None and client is not None:  # no figure: ask the grid-intensity exporter
        from obs_tui.sources.grid_intensity import GridIntensityQuery

        live = grid = GridIntensityQuery(client, carbon.query, refresh)
    joins: list[tuple[str, Join]] = [("carbon", CarbonJoin(carbon, live))]
    capabilities = doctor.capabilities(checks, read_only)
    services: dict[str, Service] = {}
    reads_prometheus = grid is not None or any(isinstance(s.source, Reporting) for s in wired)
    if client is not None and reads_prometheus:
        services["prometheus"] = client
    elif client is not None:  # the agent without an intensity query: nothing here asks it
        client.close()
        capabilities["prometheus"] = Capability(False, "not used: nothing here reads Prometheus")
    return Engine(
        wired,
        capabilities=capabilities,
        interval=config.interval,
        joins=joins,
        sinks=list(sinks),
        services=services,
    )
