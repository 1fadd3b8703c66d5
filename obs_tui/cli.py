"""Command line: the console, `doctor`, `snapshot`, `agent` and `demo`.

Bad input never shows a traceback: argparse and config problems print one line naming the
file, key or flag and what is wrong, and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from dataclasses import replace

from obs_tui import __version__
from obs_tui.config import Config, ConfigError, load
from obs_tui.demo import DemoError
from obs_tui.privileges import PrivilegeError, drop, limit

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
    common.add_argument("--keep-root", action="store_true",
                        help="do not drop root after loading the probes (see SECURITY.md)")
    common.add_argument("--history", metavar="DIR",
                        help="history store directory (default /var/lib/obs-tui/history as root, "
                             "else $XDG_STATE_HOME/obs-tui/history)")
    common.add_argument("--no-history", action="store_true", help="do not record frames")

    parser = OneLineParser(prog="obs-tui", parents=[common],
                           description="Terminal observability console: RED, power, carbon, SLOs.")
    parser.add_argument("--version", action="version", version=f"obs-tui {__version__}")
    parser.add_argument("--serve-metrics", metavar="ADDR:PORT",
                        help="also publish the console's frames on http://ADDR:PORT/metrics")
    commands = parser.add_subparsers(dest="command", metavar="{doctor,snapshot,agent,export,demo}")
    doctor = commands.add_parser("doctor", parents=[common], help="what works on this host and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    snapshot = commands.add_parser("snapshot", parents=[common], help="one Frame as JSON on stdout")
    snapshot.add_argument("--json", action="store_true", required=True, help="JSON output (required)")
    snapshot.add_argument("--duration", metavar="S", type=_positive_float, default=1.0,
                          help="window the counts and rates cover (default 1 s)")
    snapshot.add_argument("--at", metavar="TIME",
                          help="answer from history: the window starting at TIME (14:05, -10m, ISO 8601)")
    export = commands.add_parser("export", parents=[common],
                                 help="recorded frames as OpenMetrics text (for promtool tsdb "
                                      "create-blocks-from openmetrics)")
    export.add_argument("--from", dest="start", metavar="T1", required=True,
                        help="first time (14:05, -10m, ISO 8601)")
    export.add_argument("--to", dest="end", metavar="T2", default="now", help="last time (default now)")
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    agent = commands.add_parser("agent", parents=[common],
                                help="headless: publish the frames on /metrics for Prometheus")
    agent.add_argument("--listen", metavar="ADDR:PORT",
                       help="address of /metrics (default: exporter.listen, 127.0.0.1:9464)")
    demo = commands.add_parser("demo", parents=[common],
                               help="a sample service, load, the agent and Prometheus on loopback, "
                                    "and the console over them")
    demo.add_argument("--headless", action="store_true",
                      help="start everything and wait for Ctrl-C instead of opening the console")
    demo.add_argument("--for", dest="seconds", metavar="S", type=_positive_float,
                      help="with --headless: stop after S seconds")
    demo.add_argument("--rps", metavar="N", type=_positive_float, default=40.0,
                      help="requests per second of the load generator (default 40)")
    return parser


def resolve_config(args: argparse.Namespace) -> Config:
    config = load(getattr(args, "config", None))
    if hasattr(args, "interval"):
        config = replace(config, interval=args.interval)
    if hasattr(args, "theme"):
        config = replace(config, theme=args.theme)
    if hasattr(args, "keep_root"):
        config = replace(config, keep_root=True)
    if hasattr(args, "prometheus"):
        config = replace(config, prometheus={**config.prometheus, "url": args.prometheus})
    if hasattr(args, "history"):
        config = replace(config, history={**config.history, "dir": args.history})
    return config


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def power_source(config: Config, notice=lambda line: None):
    from obs_tui.sources.power import PowerSource

    power = config.power
    overrides = {key: power[key] for key in
                 ("min_watts_per_vcpu", "max_watts_per_vcpu", "memory_watts_per_gb")}
    return PowerSource(power["powercap_root"], power["hwmon_root"], overrides, notice=notice)


def readonly_sources(config: Config) -> list:
    """Read-only mode with a Prometheus: the fleet's panes from its metrics, nothing local (this
    laptop's processes are not the fleet's)."""
    from obs_tui.sources.prometheus import Client, PrometheusConfigError
    from obs_tui.sources.readonly import PromPowerSource, PromRedSource

    try:
        client = Client.from_config(config.prometheus)
    except PrometheusConfigError as exc:
        raise ConfigError(str(exc)) from None
    refresh = config.prometheus["refresh_s"]
    return [PromRedSource(client, refresh), PromPowerSource(client, refresh)]


def make_engine(config: Config, read_only: bool, notice=lambda line: None, slos=None, sinks=(),
                with_slos: bool = True):
    """Sources and capabilities for this host, wired into an Engine. Runs off the UI thread.
    `notice` gets one-line notices (the kernel-headers fallback); the console, which owns the
    terminal, passes none. `slos`: the SloSpecs already loaded (load_slos), else loaded here;
    with_slos=False for the agent, which publishes no SLOs (they are Prometheus's own data)."""
    from obs_tui import doctor
    from obs_tui.analysis.carbon import CarbonJoin, settings_from_config
    from obs_tui.engine import Engine
    from obs_tui.sources.procs import ProcsSource

    checks = doctor.run_checks(config, read_only=read_only, compile_probe=False, probe_prometheus=False)
    if read_only and config.prometheus["url"]:
        sources = readonly_sources(config)
    else:
        sources = [ProcsSource()]
    if not read_only:
        from obs_tui.sources.red import RedSource

        sources.append(RedSource(routes=config.red["routes"], max_children=config.red["max_children"],
                                 notice=notice))
        sources.append(power_source(config, notice))
    if config.prometheus["url"] and with_slos:
        from obs_tui.sources.slo import SloSource

        sources.append(SloSource(config.prometheus, load_slos(config) if slos is None else slos))
    carbon = settings_from_config(config.carbon)
    live = None
    if carbon.intensity is None:  # no figure in the config: ask the grid-intensity exporter
        from obs_tui.sources.grid_intensity import GridIntensityQuery

        live = GridIntensityQuery(config.prometheus, carbon.query)
    joins = [("carbon", CarbonJoin(carbon, live))]
    return Engine(sources, capabilities=doctor.capabilities(checks, read_only),
                  interval=config.interval, joins=joins, sinks=list(sinks))


def load_slos(config: Config) -> list:
    """The SLOs of [[slo]] and slo_files; a bad one is a ConfigError (one line, exit 2)."""
    from obs_tui.sources.slo_specs import load_all

    return load_all(config)


def make_engine_and_drop(config: Config, read_only: bool, notice=lambda line: None,
                         history: str = "", **options):
    """The engine, then root given up: everything that needs root (loading the probes,
    opening root-only files, the history store) happens before the drop; what runs for the
    rest of the session reads through the descriptors it holds (obs_tui/privileges.py).
    history: the role that records ("agent", "console"), "" for none."""
    engine = make_engine(config, read_only, notice, **options)
    if history:
        from obs_tui.history.store import StoreError
        from obs_tui.history.wiring import attach

        try:
            attach(engine, config, history, notice)
        except StoreError as exc:
            engine.close()
            raise UsageError(f"obs-tui {history}: {exc} (--history DIR to choose, --no-history "
                             "to run without)") from None
    try:
        engine.privileges = drop(keep_root=config.keep_root)
    except (OSError, PrivilegeError) as exc:
        engine.close()  # never go on as root when the drop was asked for and failed
        raise PrivilegeError(f"cannot drop root: {exc} (use --keep-root to stay root)") from None
    return engine


def cmd_doctor(config: Config, args) -> int:
    from obs_tui import doctor

    from obs_tui.history.query import describe_dir, render_text

    checks = doctor.run_checks(config, read_only=getattr(args, "read_only", False))
    history = describe_dir(_history_dir(config), time.time())
    if args.json:
        print(json.dumps({**doctor.as_json(checks), "history": history}, indent=2))
    else:
        print(doctor.render_text(checks))
        print(render_text(history))
    return 0


def _history_dir(config: Config):
    from obs_tui.history.wiring import history_dir

    return history_dir(config)


def _parse_time(flag: str, text: str, now: float) -> float:
    from obs_tui.history.timeparse import parse_time

    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise UsageError(f"obs-tui: {flag}: {exc}") from None


def _open_history(config: Config):
    from obs_tui.history.store import Store, StoreError

    try:
        return Store(_history_dir(config))
    except StoreError as exc:
        raise UsageError(f"obs-tui: {exc} (--history DIR to choose)") from None


def cmd_snapshot_at(config: Config, args) -> int:
    """`snapshot --json --at TIME`: the window's totals from history, no probes."""
    from obs_tui.history.query import NoHistory, window_at

    start = _parse_time("--at", args.at, time.time())
    store = _open_history(config)
    try:
        doc = window_at(store, start, args.duration, notice=_to_stderr)
    except NoHistory as exc:
        print(f"obs-tui: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(json.dumps(doc, indent=2), flush=True)
    return 0


def cmd_export(config: Config, args) -> int:
    from obs_tui.history.openmetrics import openmetrics
    from obs_tui.history.query import NoHistory, frames_between

    now = time.time()
    start, end = _parse_time("--from", args.start, now), _parse_time("--to", args.end, now)
    if end <= start:
        raise UsageError(f"obs-tui export: --to ({args.end}) must be after --from ({args.start})")
    store = _open_history(config)
    try:
        text = openmetrics(frames_between(store, start, end, notice=_to_stderr),
                           config.exporter["top_processes"])
    except NoHistory as exc:
        print(f"obs-tui: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.output:
        try:
            with open(args.output, "wb") as out:
                out.write(text)
        except OSError as exc:
            raise UsageError(f"obs-tui export: --output {args.output}: {exc.strerror}") from None
    else:
        sys.stdout.buffer.write(text)
        sys.stdout.flush()
    return 0


def cmd_snapshot(config: Config, args) -> int:
    from obs_tui.snapshot import frame_to_json

    if getattr(args, "at", None) is not None:
        return cmd_snapshot_at(config, args)
    engine = make_engine_and_drop(config, getattr(args, "read_only", False), notice=_to_stderr,
                                  slos=load_slos(config))
    try:
        timeout = float(config.prometheus["timeout_s"]) * 2
        engine.wait_ready(timeout)
        engine.tick()
        time.sleep(args.duration)
        engine.wait_fresh(timeout)
        doc = frame_to_json(engine.tick())
        if engine.privileges is not None:
            doc["privileges"] = dataclasses.asdict(engine.privileges)
        print(json.dumps(doc, indent=2), flush=True)
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
    sinks, server = [], None
    if args.serve_metrics:
        collector, server = start_exporter(config, args.serve_metrics, "--serve-metrics")
        sinks.append(collector.publish)
    try:
        history = "" if getattr(args, "no_history", False) else "console"
        return run_console(lambda: make_engine_and_drop(config, read_only, slos=slos, sinks=sinks,
                                                        history=history),
                           config.theme, read_only)
    finally:
        if server is not None:
            server.close()


def start_exporter(config: Config, listen: str | None, flag: str):
    """The collector and its /metrics server (flag names where a bad address came from)."""
    from obs_tui.exporter import ExporterError, FrameCollector, serve_from_config

    collector = FrameCollector(config.exporter["top_processes"])
    where = flag if listen else f"{config.path or 'config'}: key 'exporter.listen'"
    try:
        server = serve_from_config(collector, config.exporter, listen or config.exporter["listen"], where)
    except ExporterError as exc:
        raise UsageError(f"obs-tui: {exc}") from None
    return collector, server


def cmd_agent(config: Config, args) -> int:
    """Headless: tick the engine every interval and publish each frame until SIGTERM/SIGINT."""
    if getattr(args, "read_only", False):
        raise UsageError("obs-tui agent: --read-only has nothing to publish (the agent measures "
                         "this host; read-only consoles read Prometheus)")
    collector, server = start_exporter(config, getattr(args, "listen", None), "--listen")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"obs-tui agent: metrics on {server.url}", file=sys.stderr, flush=True)
    engine = None
    try:
        engine = make_engine_and_drop(config, False, notice=_to_stderr, sinks=[collector.publish],
                                      with_slos=False,
                                      history="" if getattr(args, "no_history", False) else "agent")
        if engine.history is not None:
            print(f"obs-tui agent: recording to {engine.history.path}", file=sys.stderr, flush=True)
        while not stop.is_set():
            engine.tick()
            # ticks on whole multiples of the interval: a recorded 1 s tick is one wall-clock
            # second, so history answers "what happened at 14:05:12" with that second
            stop.wait(config.interval - time.time() % config.interval)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if engine is not None:
            engine.close()
    return 0


def cmd_demo(config: Config, args) -> int:
    from obs_tui import demo

    read_only = getattr(args, "read_only", False)

    def open_console(running: "demo.Demo") -> int:
        from obs_tui.tui.app import run_console

        # The demo's config (its Prometheus, routes and SLOs) with the flags' overrides.
        args.config = str(running.config_path)
        shown = resolve_config(args)
        # No privilege drop here: the demo must still be able to stop what it started as root.
        return run_console(lambda: make_engine(shown, read_only), shown.theme, read_only)

    return demo.run(open_console, args.headless, args.seconds, args.rps)


TIME_FLAGS = ("--at", "--from", "--to")


def _join_times(argv: list[str]) -> list[str]:
    """`--at -10m` as `--at=-10m`: argparse takes a value starting with '-' for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in TIME_FLAGS and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(_join_times(sys.argv[1:] if argv is None else argv))
        config = resolve_config(args)
        if args.command == "doctor":
            return cmd_doctor(config, args)
        # Before any thread: see obs_tui/privileges.py. Not for the demo, which starts the agent
        # as a child that needs root to load its probes (the agent drops root itself).
        if not config.keep_root and args.command != "demo":
            limit()
        if args.command == "snapshot":
            return cmd_snapshot(config, args)
        if args.command == "agent":
            return cmd_agent(config, args)
        if args.command == "export":
            return cmd_export(config, args)
        if args.command == "demo":
            return cmd_demo(config, args)
        return cmd_console(config, args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"obs-tui: config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PrivilegeError as exc:
        print(f"obs-tui: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except DemoError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # a bug of ours: one line, and the traceback only on request
        if os.environ.get("OBS_TUI_DEBUG"):
            raise
        print(f"obs-tui: internal error: {type(exc).__name__}: {exc} "
              "(set OBS_TUI_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
