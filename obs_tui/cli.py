"""Command line: the console, `doctor` and `snapshot`.

Bad input never shows a traceback: argparse and config problems print one line naming the
file, key or flag and what is wrong, and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import replace

from obs_tui import __version__
from obs_tui.config import Config, ConfigError, load
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
    if hasattr(args, "keep_root"):
        config = replace(config, keep_root=True)
    if hasattr(args, "prometheus"):
        config = replace(config, prometheus={**config.prometheus, "url": args.prometheus})
    return config


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def make_engine(config: Config, read_only: bool, notice=lambda line: None):
    """Sources and capabilities for this host, wired into an Engine. Runs off the UI thread.
    `notice` gets one-line notices (the kernel-headers fallback); the console, which owns the
    terminal, passes none."""
    from obs_tui import doctor
    from obs_tui.engine import Engine
    from obs_tui.sources.procs import ProcsSource

    checks = doctor.run_checks(config, read_only=read_only, compile_probe=False)
    sources = [ProcsSource()]
    if not read_only:
        from obs_tui.sources.red import RedSource

        sources.append(RedSource(routes=config.red["routes"], max_children=config.red["max_children"],
                                 notice=notice))
    return Engine(sources, capabilities=doctor.capabilities(checks, read_only),
                  interval=config.interval)


def make_engine_and_drop(config: Config, read_only: bool, notice=lambda line: None):
    """The engine, then root given up: everything that needs root (loading the probes,
    opening root-only files) happens in make_engine; what runs for the rest of the session
    reads through the descriptors it holds (obs_tui/privileges.py)."""
    engine = make_engine(config, read_only, notice)
    try:
        engine.privileges = drop(keep_root=config.keep_root)
    except (OSError, PrivilegeError) as exc:
        engine.close()  # never go on as root when the drop was asked for and failed
        raise PrivilegeError(f"cannot drop root: {exc} (use --keep-root to stay root)") from None
    return engine


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

    engine = make_engine_and_drop(config, getattr(args, "read_only", False), notice=_to_stderr)
    try:
        engine.tick()
        time.sleep(args.duration)
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
    return run_console(lambda: make_engine_and_drop(config, read_only), config.theme, read_only)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        config = resolve_config(args)
        if args.command == "doctor":
            return cmd_doctor(config, args)
        if not config.keep_root:
            limit()  # before any thread: see obs_tui/privileges.py
        if args.command == "snapshot":
            return cmd_snapshot(config, args)
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
    except Exception as exc:  # a bug of ours: one line, and the traceback only on request
        if os.environ.get("OBS_TUI_DEBUG"):
            raise
        print(f"obs-tui: internal error: {type(exc).__name__}: {exc} "
              "(set OBS_TUI_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
