"""Command line: the console, `doctor` and `snapshot`.

Bad input never shows a traceback: argparse and config problems print one line naming the
file, key or flag and what is wrong, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

from obs_tui import __version__
from obs_tui.config import Config, ConfigError, load

EXIT_USAGE = 2


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own error prints usage over several lines
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS lets the options stand before or after the subcommand without the subparser's
    # defaults overwriting what was given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", metavar="FILE", help="TOML config file")
    common.add_argument("--interval", metavar="S", type=_positive_float, help="refresh interval in seconds")
    common.add_argument("--theme", metavar="NAME", help="dark, light or mono")
    common.add_argument("--read-only", action="store_true",
                        help="no root, no probes: fill the panes from Prometheus only")
    common.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")

    parser = OneLineParser(prog="obs-tui", parents=[common],
                           description="Terminal observability console: RED, power, carbon, SLOs.")
    parser.add_argument("--version", action="version", version=f"obs-tui {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{doctor,snapshot}")
    doctor = commands.add_parser("doctor", parents=[common], help="what works on this host and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    snapshot = commands.add_parser("snapshot", parents=[common], help="one Frame as JSON on stdout")
    snapshot.add_argument("--json", action="store_true", required=True, help="JSON output (required)")
    snapshot.add_argument("--duration", metavar="S", type=_positive_float, default=1.0,
                          help="window the counts and rates cover (default 1 s)")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    config = load(getattr(args, "config", None))
    if hasattr(args, "interval"):
        config = replace(config, interval=args.interval)
    if hasattr(args, "theme"):
        config = replace(config, theme=args.theme)
    if hasattr(args, "prometheus"):
        config = replace(config, prometheus={**config.prometheus, "url": args.prometheus})
    return config


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def power_source(config: Config, notice=lambda line: None):
    from obs_tui.sources.power import PowerSource

    power = config.power
    overrides = {key: power[key] for key in
                 ("min_watts_per_vcpu", "max_watts_per_vcpu", "memory_watts_per_gb")}
    return PowerSource(power["powercap_root"], power["hwmon_root"], overrides, notice=notice)


def make_engine(config: Config, read_only: bool, notice=lambda line: None, slos=None):
    """Sources and capabilities for this host, wired into an Engine. Runs off the UI thread.
    `notice` gets one-line notices (the kernel-headers fallback); the console, which owns the
    terminal, passes none. `slos`: the SloSpecs already loaded (load_slos), else loaded here."""
    from obs_tui import doctor
    from obs_tui.analysis.carbon import CarbonJoin, settings_from_config
    from obs_tui.engine import Engine
    from obs_tui.sources.procs import ProcsSource

    checks = doctor.run_checks(config, read_only=read_only, compile_probe=False, probe_prometheus=False)
    sources = [ProcsSource()]
    if not read_only:
        from obs_tui.sources.red import RedSource

        sources.append(RedSource(routes=config.red["routes"], max_children=config.red["max_children"],
                                 notice=notice))
        sources.append(power_source(config, notice))
    if config.prometheus["url"]:
        from obs_tui.sources.slo import SloSource

        sources.append(SloSource(config.prometheus, load_slos(config) if slos is None else slos))
    carbon = settings_from_config(config.carbon)
    live = None
    if carbon.intensity is None:  # no figure in the config: ask the grid-intensity exporter
        from obs_tui.sources.grid_intensity import GridIntensityQuery

        live = GridIntensityQuery(config.prometheus, carbon.query)
    joins = [("carbon", CarbonJoin(carbon, live))]
    return Engine(sources, capabilities=doctor.capabilities(checks, read_only),
                  interval=config.interval, joins=joins)


def load_slos(config: Config) -> list:
    """The SLOs of [[slo]] and slo_files; a bad one is a ConfigError (one line, exit 2)."""
    from obs_tui.sources.slo_specs import load_all

    return load_all(config)


def cmd_doctor(config: Config, args) -> int:
    from obs_tui import doctor

    checks = doctor.run_checks(config, read_only=getattr(args, "read_only", False))
    if args.json:
        print(json.dumps(doctor.as_json(checks), indent=2))
    else:
        print(doctor.render_text(checks))
    return 0


def cmd_snapshot(config: Config, args) -> int:
    from obs_tui.snapshot import frame_to_json

    engine = make_engine(config, getattr(args, "read_only", False), notice=_to_stderr,
                         slos=load_slos(config))
    try:
        engine.wait_ready(float(config.prometheus["timeout_s"]) * 2)
        engine.tick()
        time.sleep(args.duration)
        print(json.dumps(frame_to_json(engine.tick()), indent=2), flush=True)
    finally:
        engine.close()  # detaching uprobes takes ~1 s: after the output, not before
    return 0


def cmd_console(config: Config, args) -> int:
    from obs_tui.tui.app import run_console
    from obs_tui.tui.themes import load_theme

    try:
        load_theme(config.theme)  # NO_COLOR is applied by the app (themes.initial_theme)
    except ValueError as exc:
        where = "--theme" if hasattr(args, "theme") else f"{config.path or 'config'}: key 'theme'"
        raise UsageError(f"obs-tui: {where}: {exc}") from None
    read_only = getattr(args, "read_only", False)
    slos = load_slos(config)  # a bad SLO file stops here, with one line, before the screen
    return run_console(lambda: make_engine(config, read_only, slos=slos), config.theme, read_only)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = resolve_config(args)
        if args.command == "doctor":
            return cmd_doctor(config, args)
        if args.command == "snapshot":
            return cmd_snapshot(config, args)
        return cmd_console(config, args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"obs-tui: config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug of ours: one line, and the traceback only on request
        if os.environ.get("OBS_TUI_DEBUG"):
            raise
        print(f"obs-tui: internal error: {type(exc).__name__}: {exc} "
              "(set OBS_TUI_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
