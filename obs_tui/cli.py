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
from pathlib import Path

from obs_tui import __version__
from obs_tui.config import INTERVAL, Bounds, Config, ConfigError, load, url_problem
from obs_tui.demo import DemoError
from obs_tui.privileges import PrivilegeError, drop, limit
from obs_tui.text import printable

EXIT_USAGE = 2


class UsageError(Exception):
    pass


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own error prints usage over several lines
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _number(bounds: Bounds):
    """An argparse type: a number within `bounds` (the config's, for the flags that set a key)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a number of {bounds.unit or 'units'}, got {text!r}"
            ) from None
        if bounds.problem(value):  # nan and inf too: no comparison holds for nan
            raise argparse.ArgumentTypeError(bounds.problem(value))
        return value

    return parse


def _tenths(text: str) -> float:
    """-d/--delay as htop takes it: tenths of a second, as seconds (within the interval's bounds)."""
    try:
        value = float(text) / 10
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of tenths of a second, got {text!r}") from None
    if INTERVAL.problem(value):
        raise argparse.ArgumentTypeError(
            f"must be from {INTERVAL.low * 10:g} to {INTERVAL.high * 10:g} tenths of a second, got {text}"
        )
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _options() -> dict[str, OneLineParser]:
    """The shared options in small groups, so each subcommand offers only those that apply.

    SUPPRESS lets an option stand before or after its subcommand without the subparser's
    defaults overwriting what was given before it."""
    from obs_tui.cli_help import files_completion

    def group() -> OneLineParser:
        return OneLineParser(add_help=False, argument_default=argparse.SUPPRESS)

    config, interval, sources, root, screen = group(), group(), group(), group(), group()
    history, recording = group(), group()
    files_completion(config.add_argument("--config", metavar="FILE", help="TOML config file"))
    every = interval.add_mutually_exclusive_group()
    every.add_argument(
        "--interval", metavar="S", type=_number(INTERVAL), help="refresh interval in seconds (0.1 to 300)"
    )
    every.add_argument(
        "-d",
        "--delay",
        dest="interval",
        metavar="TENTHS",
        type=_tenths,
        help="refresh interval in tenths of a second, as in htop (-d 10 is 1 s)",
    )
    sources.add_argument(
        "--read-only", action="store_true", help="no root, no probes: fill the panes from Prometheus only"
    )
    sources.add_argument("--prometheus", metavar="URL", help="Prometheus base URL")
    root.add_argument(
        "--keep-root", action="store_true", help="do not drop root after loading the probes (see SECURITY.md)"
    )
    screen.add_argument(
        "--theme",
        metavar="NAME",
        help="dark, light, mono or a user theme (default: the last one chosen with T)",
    )
    screen.add_argument(
        "--no-mouse",
        action="store_true",
        help="leave the mouse to the terminal, so text can be selected and copied",
    )
    history.add_argument(
        "--history",
        metavar="DIR",
        help="history store directory (default /var/lib/obs-tui/history as root, "
        "else $XDG_STATE_HOME/obs-tui/history)",
    )
    recording.add_argument("--no-history", action="store_true", help="do not record frames")
    return {
        "config": config,
        "interval": interval,
        "sources": sources,
        "root": root,
        "screen": screen,
        "history": history,
        "recording": recording,
    }


COMMANDS = ("doctor", "snapshot", "export", "agent", "demo", "config", "completion")


def build_parser() -> argparse.ArgumentParser:
    from obs_tui.cli_help import epilog

    o = _options()
    parser = OneLineParser(
        prog="obs-tui",
        parents=list(o.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(),
        description="Terminal observability console: RED, power, carbon, SLOs.\n"
        "Without a subcommand, the console.",
    )
    parser.add_argument("--version", action="version", version=f"obs-tui {__version__}")
    parser.add_argument(
        "--serve-metrics",
        metavar="ADDR:PORT",
        default=argparse.SUPPRESS,
        help="also publish the console's frames on http://ADDR:PORT/metrics",
    )
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")

    def command(name: str, groups: list[str], help: str, description: str = "") -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[o[g] for g in groups],
            help=help,
            description=description or help[:1].upper() + help[1:] + ".",
        )

    doctor = command("doctor", ["config", "sources", "history"], "what works on this host and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    snapshot = command(
        "snapshot",
        ["config", "interval", "sources", "root", "history", "recording"],
        "frames as JSON on stdout (NDJSON with --count, CSV with --csv)",
        "One frame as JSON on stdout; with --count N, N frames as NDJSON, one a line "
        "every --interval seconds; with --csv TABLE, one table as CSV.",
    )
    snapshot.add_argument(
        "--json", action="store_true", help="JSON output (the default; kept for scripts that pass it)"
    )
    snapshot.add_argument(
        "--csv",
        metavar="TABLE",
        choices=("processes", "services", "slo"),
        help="one table as CSV: processes, services or slo",
    )
    snapshot.add_argument(
        "--duration",
        metavar="S",
        type=_number(Bounds(0.1, 86400.0, "seconds")),
        help="window the counts and rates of one frame cover (default 1 s)",
    )
    snapshot.add_argument(
        "--count",
        metavar="N",
        type=_positive_int,
        help="N frames, one every --interval seconds (NDJSON, or CSV rows)",
    )
    snapshot.add_argument(
        "--at",
        metavar="TIME",
        help="answer from history: the window starting at TIME (14:05, -10m, ISO 8601)",
    )
    export = command(
        "export",
        ["config", "history"],
        "recorded frames as OpenMetrics text (for promtool tsdb create-blocks-from openmetrics)",
    )
    export.add_argument(
        "--from", dest="start", metavar="T1", required=True, help="first time (14:05, -10m, ISO 8601)"
    )
    export.add_argument("--to", dest="end", metavar="T2", default="now", help="last time (default now)")
    export.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")
    agent = command(
        "agent",
        ["config", "interval", "root", "history", "recording"],
        "headless: publish the frames on /metrics for Prometheus",
    )
    agent.add_argument(
        "--prometheus",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="Prometheus base URL (for a live grid intensity query)",
    )
    agent.add_argument(
        "--listen", metavar="ADDR:PORT", help="address of /metrics (default: exporter.listen, 127.0.0.1:9464)"
    )
    agent.add_argument(
        "--web-config-file",
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="exporter-toolkit web-config.yml: TLS, client "
        "certificates, bcrypt basic auth (default: "
        "exporter.web_config_file)",
    )
    demo = command(
        "demo",
        ["interval", "screen"],
        "a sample service, load, the agent and Prometheus on loopback, and the console over them",
    )
    demo.add_argument(
        "--read-only",
        action="store_true",
        default=argparse.SUPPRESS,
        help="the console reads the demo's Prometheus only",
    )
    demo.add_argument(
        "--headless",
        action="store_true",
        help="start everything and wait for Ctrl-C instead of opening the console",
    )
    demo.add_argument(
        "--for",
        dest="seconds",
        metavar="S",
        type=_number(Bounds(0.1, 1e7, "seconds")),
        help="with --headless: stop after S seconds",
    )
    demo.add_argument(
        "--rps",
        metavar="N",
        type=_number(Bounds(0.1, 1000.0, "requests per second")),
        default=40.0,
        help="requests per second of the load generator (default 40)",
    )
    config = command(
        "config",
        ["config"],
        "the config file in use, or every key with its default",
        "Without options: the config search path and the file in use. With "
        "--default: an annotated config with every key and its default, which "
        "obs-tui accepts as it is.",
    )
    config.add_argument(
        "--default", action="store_true", help="print every key with its default value, annotated"
    )
    completion = command(
        "completion",
        [],
        "a shell completion script (bash or zsh) on stdout",
        "A shell completion script on stdout, e.g. obs-tui completion bash > "
        "/usr/local/share/bash-completion/completions/obs-tui (make install-docs "
        "installs it).",
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="bash or zsh")
    parser.subcommands = dict(commands.choices)  # type: ignore[attr-defined]
    return parser


def check_applies(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An option given before a subcommand that does not take it is an error, not ignored:
    `obs-tui --theme mono doctor` is as wrong as `obs-tui doctor --theme mono`."""
    if args.command is None:
        return
    sub = parser.subcommands[args.command]  # type: ignore[attr-defined]
    taken = {a.dest for a in sub._actions}
    for dest in vars(args):
        given = [a.option_strings[-1] for a in parser._actions if a.dest == dest and a.option_strings]
        if given and dest not in taken:
            raise UsageError(
                f"obs-tui {args.command}: {'/'.join(given)} does not apply "
                f"to {args.command} (see obs-tui {args.command} --help)"
            )


def resolve_config(args: argparse.Namespace) -> Config:
    config = load(getattr(args, "config", None))
    if hasattr(args, "interval"):
        config = replace(config, interval=args.interval)
    if hasattr(args, "theme"):
        config = replace(config, theme=args.theme)
    if hasattr(args, "keep_root"):
        config = replace(config, keep_root=True)
    if hasattr(args, "prometheus"):
        if url_problem(args.prometheus):
            raise UsageError(f"obs-tui: --prometheus {url_problem(args.prometheus)}")
        config = replace(config, prometheus={**config.prometheus, "url": args.prometheus})
    if hasattr(args, "history"):
        config = replace(config, history={**config.history, "dir": args.history})
    return config


def _to_stderr(line: object) -> None:
    """One line for the user; printable (obs_tui/text.py): it may carry a path, a URL or a
    process's or server's own words."""
    print(printable(str(line), keep_newlines=True), file=sys.stderr)


def make_engine_and_drop(
    config: Config, read_only: bool, notice=lambda line: None, history: str = "", **options
):
    """The engine, then root given up: everything that needs root (loading the probes,
    opening root-only files, the history store) happens before the drop; what runs for the
    rest of the session reads through the descriptors it holds (obs_tui/privileges.py).
    history: the role that records ("agent", "console"), "" for none."""
    from obs_tui.pipeline import make_engine

    engine = make_engine(config, read_only, notice, **options)
    if history:
        from obs_tui.history.store import StoreError
        from obs_tui.history.wiring import attach

        try:
            attach(engine, config, history, notice)
        except StoreError as exc:
            engine.close()
            raise UsageError(
                f"obs-tui {history}: {exc} (--history DIR to choose, --no-history to run without)"
            ) from None
    try:
        engine.privileges = drop(keep_root=config.keep_root)
    except (OSError, PrivilegeError) as exc:
        engine.close()  # never go on as root when the drop was asked for and failed
        raise PrivilegeError(f"cannot drop root: {exc} (use --keep-root to stay root)") from None
    return engine


def cmd_config(args) -> int:
    """`config --default`: every key with its default; `config`: where the config is read from.
    Neither reads the config file's contents: a broken file must not hide the defaults."""
    from obs_tui.config import search_paths
    from obs_tui.config_template import default_config

    if args.default:
        print(default_config(__version__), end="")
        return 0
    flag = getattr(args, "config", None)
    paths = [Path(flag)] if flag else search_paths()
    used = next((p for p in paths if p.is_file()), None)
    print("config search path (the first file found is used):")
    for path in paths:
        print(f"  {'*' if path == used else ' '} {path}{'' if path.is_file() else '  (absent)'}")
    print(f"in use: {used}" if used else "in use: none (the defaults; obs-tui config --default shows them)")
    return 0


def cmd_doctor(config: Config, args) -> int:
    from obs_tui import doctor
    from obs_tui.history.query import describe_dir, render_text

    checks = doctor.run_checks(config, read_only=getattr(args, "read_only", False))
    history = describe_dir(_history_dir(config), time.time())
    if args.json:
        print(json.dumps({**doctor.as_json(checks), "history": history}, indent=2))
    else:
        print(printable(doctor.render_text(checks), keep_newlines=True))
        print(printable(render_text(history), keep_newlines=True))
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
        doc = window_at(store, start, 1.0 if args.duration is None else args.duration, notice=_to_stderr)
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
        text = openmetrics(
            frames_between(store, start, end, notice=_to_stderr), config.exporter["top_processes"]
        )
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
    """One frame as indented JSON; with --count N, N frames as NDJSON (one line each, every
    interval); with --csv TABLE, that table's rows as CSV (header once)."""
    from obs_tui.snapshot import frame_to_json

    if getattr(args, "json", False) and args.csv:
        raise UsageError("obs-tui snapshot: --json and --csv: choose one")
    if args.count is not None and args.duration is not None:
        raise UsageError(
            "obs-tui snapshot: --duration is the window of one frame; with --count "
            "each frame covers --interval"
        )
    write = _snapshot_writer(args.csv, stream=args.count is not None)
    if getattr(args, "at", None) is not None:
        if args.count is not None:
            raise UsageError(
                "obs-tui snapshot: --at answers one window from history; --count "
                "streams live frames: choose one"
            )
        return cmd_snapshot_at(config, args)
    from obs_tui.pipeline import load_slos

    engine = make_engine_and_drop(
        config, getattr(args, "read_only", False), notice=_to_stderr, slos=load_slos(config)
    )

    def document(frame) -> dict:
        doc = frame_to_json(frame)
        if engine.privileges is not None:
            doc["privileges"] = dataclasses.asdict(engine.privileges)
        return doc

    try:
        timeout = float(config.prometheus["timeout_s"]) * 2
        engine.wait_ready(timeout)
        engine.tick()
        if args.count is None:
            # The window opens on a tick like those after it: the first one reads every /proc
            # file and probe map for the first time, and the sources sampled after those would
            # start the window later than the Frame says on a busy host.
            engine.tick()
            engine.open_window()
            # Tick at the interval throughout the window, as the console would: a RAPL counter
            # read only at the window's two ends could wrap in between unseen.
            end = time.monotonic() + (1.0 if args.duration is None else args.duration)
            while end - time.monotonic() > config.interval:
                time.sleep(config.interval)
                engine.tick()
            time.sleep(max(end - time.monotonic(), 0.0))
            engine.wait_fresh(timeout)
            write(document(engine.tick()))
        else:
            started = time.monotonic()
            for n in range(1, args.count + 1):
                time.sleep(max(started + n * config.interval - time.monotonic(), 0.0))
                write(document(engine.tick()))
    except BrokenPipeError:  # `| head -n 3`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
    finally:
        engine.close()  # detaching uprobes takes ~1 s: after the output, not before
    return 0


def _snapshot_writer(table: str | None, stream: bool):
    """A function that prints one snapshot document in the asked format."""
    if table:
        from obs_tui.snapshot_tables import CsvWriter

        return CsvWriter(table, sys.stdout).write
    if stream:
        return lambda doc: print(json.dumps(doc, separators=(",", ":")), flush=True)
    return lambda doc: print(json.dumps(doc, indent=2), flush=True)


def cmd_console(config: Config, args) -> int:
    from obs_tui.tui.app import run_console
    from obs_tui.tui.themes import load_theme

    try:
        load_theme(config.theme)  # NO_COLOR is applied by the app (themes.initial_theme)
    except ValueError as exc:
        where = "--theme" if hasattr(args, "theme") else f"{config.path or 'config'}: key 'theme'"
        raise UsageError(f"obs-tui: {where}: {exc}") from None
    from obs_tui.pipeline import load_slos

    read_only = getattr(args, "read_only", False)
    slos = load_slos(config)  # a bad SLO file stops here, with one line, before the screen
    sinks, server = [], None
    if hasattr(args, "serve_metrics"):
        collector, server = start_exporter(config, args.serve_metrics, "--serve-metrics")
        sinks.append(collector.publish)
    try:
        history = "" if getattr(args, "no_history", False) else "console"
        return run_console(
            lambda: make_engine_and_drop(config, read_only, slos=slos, sinks=sinks, history=history),
            read_only=read_only,
            **screen_options(config, args, not config.keep_root),
        )
    finally:
        if server is not None:
            server.close()


def screen_options(config: Config, args, drops_root: bool) -> dict:
    """run_console's theme, mouse and remembered state: --theme, else the theme last chosen
    with T (obs_tui/tui/state.py), else the config's."""
    from obs_tui.tui.state import Remembered, owner_uid
    from obs_tui.tui.themes import load_theme

    remembered = Remembered.load(owner_uid(drops_root))
    theme = config.theme
    if not hasattr(args, "theme") and remembered.theme:
        try:
            load_theme(remembered.theme)
            theme = remembered.theme
        except ValueError:  # a theme file since removed: the config's, silently
            pass
    return {"theme_name": theme, "mouse": not getattr(args, "no_mouse", False), "remembered": remembered}


def start_exporter(config: Config, listen: str | None, flag: str, web_config_file: str | None = None):
    """The collector and its /metrics server (flag names where a bad address came from)."""
    from obs_tui.exporter import ExporterError, FrameCollector, serve_from_config

    collector = FrameCollector(config.exporter["top_processes"])
    where = flag if listen else f"{config.path or 'config'}: key 'exporter.listen'"
    try:
        server = serve_from_config(
            collector, config.exporter, listen or config.exporter["listen"], where, web_config_file
        )
    except ExporterError as exc:
        raise UsageError(f"obs-tui: {exc}") from None
    return collector, server


def cmd_agent(config: Config, args) -> int:
    """Headless: tick the engine every interval and publish each frame until SIGTERM/SIGINT."""
    from obs_tui.exporter import sources_off

    started: float | None = time.monotonic()
    collector, server = start_exporter(
        config, getattr(args, "listen", None), "--listen", getattr(args, "web_config_file", None)
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        f"obs-tui agent: metrics on {server.url} (503 until ready: "
        f"{server.url.removesuffix('/metrics')}/-/ready)",
        file=sys.stderr,
        flush=True,
    )
    engine = None
    try:
        engine = make_engine_and_drop(
            config,
            False,
            notice=_to_stderr,
            sinks=[collector.publish],
            with_slos=False,
            history="" if getattr(args, "no_history", False) else "agent",
        )
        if engine.history is not None:
            print(f"obs-tui agent: recording to {engine.history.path}", file=sys.stderr, flush=True)
        while not stop.is_set():
            frame = engine.tick()
            if started is not None:  # the first frame is published: /-/ready now answers 200
                notes = "".join(f"; {off}" for off in sources_off(frame))
                print(
                    f"obs-tui agent: ready in {time.monotonic() - started:.1f} s (probes "
                    f"attached, first frame published){notes}",
                    file=sys.stderr,
                    flush=True,
                )
                started = None
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

    def open_console(running: demo.Demo) -> int:
        from obs_tui.pipeline import make_engine
        from obs_tui.tui.app import run_console

        # The demo's config (its Prometheus, routes and SLOs) with the flags' overrides.
        args.config = str(running.config_path)
        shown = resolve_config(args)
        # No privilege drop here: the demo must still be able to stop what it started as root.
        return run_console(
            lambda: make_engine(shown, read_only),
            read_only=read_only,
            **screen_options(shown, args, drops_root=False),
        )

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
        parser = build_parser()
        args = parser.parse_args(_join_times(sys.argv[1:] if argv is None else argv))
        check_applies(parser, args)
        if args.command == "completion":
            from obs_tui.cli_help import completion

            print(completion(parser, args.shell), end="")
            return 0
        if args.command == "config":
            return cmd_config(args)
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
        _to_stderr(exc)
        return EXIT_USAGE
    except ConfigError as exc:
        _to_stderr(f"obs-tui: config: {exc}")
        return EXIT_USAGE
    except PrivilegeError as exc:
        _to_stderr(f"obs-tui: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    except DemoError as exc:
        _to_stderr(exc)
        return 1
    except Exception as exc:  # a bug of ours: one line, and the traceback only on request
        if os.environ.get("OBS_TUI_DEBUG"):
            raise
        _to_stderr(
            f"obs-tui: internal error: {type(exc).__name__}: {exc} (set OBS_TUI_DEBUG=1 for the traceback)"
        )
        return 1
