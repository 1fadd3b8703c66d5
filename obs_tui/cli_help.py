"""What `--help` says beyond the options, and the man page and shell completions made from
the same argument parser (argparse-manpage and shtab), so none of them can drift from it.

Examples, files and environment variables are written once here: the --help epilog and the
man page's EXAMPLES, FILES and ENVIRONMENT sections are both rendered from them.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from obs_tui.config import search_paths_text

EXAMPLES = [
    ("sudo obs-tui", "the console: power, requests, SLOs and carbon of this host"),
    ("sudo obs-tui -d 5", "the console, refreshed every half second (tenths, as in htop)"),
    ("obs-tui --read-only --prometheus http://prom:9090", "no root: the fleet's panes from Prometheus"),
    ("sudo obs-tui demo", "a sample service, load, the agent and Prometheus, and the console over them"),
    ("obs-tui doctor", "what works on this host and why not"),
    ("sudo obs-tui snapshot --duration 5", "one frame as JSON: counts over 5 seconds"),
    ("sudo obs-tui snapshot --count 10 --interval 2", "ten frames as NDJSON, one line every 2 s"),
    ("sudo obs-tui snapshot --csv processes", "the process table as CSV"),
    ("sudo obs-tui agent --listen 0.0.0.0:9464", "headless: /metrics for Prometheus"),
    ("obs-tui config --default > ~/.config/obs-tui/config.toml", "every key with its default"),
    ("obs-tui completion bash", "the bash completion script (also: zsh)"),
]

ENVIRONMENT = [
    ("OBS_TUI_CONFIG", "the config file, before the search path (--config wins over it)"),
    ("XDG_CONFIG_HOME", "where the user's config.toml and themes/ are (default ~/.config)"),
    ("XDG_STATE_HOME", "where the console remembers the theme and each pane's sort (default ~/.local/state)"),
    ("NO_COLOR", "set, even empty: the mono theme, whatever was asked for"),
    ("OBS_TUI_DEBUG", "set: a traceback instead of the one-line internal error"),
    ("OBS_TUI_HISTORY", "the history store's directory when neither --history nor [history] dir says"),
    ("BCC_KERNEL_SOURCE", "kernel headers for the eBPF probes (else found or assembled)"),
    ("SUDO_UID, SUDO_GID", "under sudo, the user the console becomes once the probes are loaded"),
]


def files() -> list[tuple[str, str]]:
    return [
        ("config.toml", "looked for in this order: " + search_paths_text()),
        (
            "$XDG_CONFIG_HOME/obs-tui/themes/NAME.toml",
            "user themes (Textual theme fields), chosen with --theme NAME or T",
        ),
        (
            "$XDG_STATE_HOME/obs-tui/console.toml",
            "the theme and sorts the console remembers; written only by the user it belongs to",
        ),
    ]


def _pairs(pairs: list[tuple[str, str]], columns: int = 79) -> str:
    """Two columns; a long first part gets its own line, the second wraps under its column."""
    width = min(max(len(a) for a, _ in pairs), 22)
    hang = " " * (width + 4)
    lines = []
    for a, b in pairs:
        wrapped = textwrap.wrap(b, columns - len(hang), break_on_hyphens=False) or [""]
        if len(a) > width:
            lines.append(f"  {a}")
            lines += [hang + w for w in wrapped]
        else:
            lines.append(f"  {a.ljust(width)}  {wrapped[0]}")
            lines += [hang + w for w in wrapped[1:]]
    return "\n".join(lines)


def epilog() -> str:
    """The text under the options of `obs-tui --help`."""
    return "\n\n".join(
        [
            "examples:\n" + _pairs(EXAMPLES),
            "files:\n" + _pairs(files()),
            "environment:\n" + _pairs(ENVIRONMENT),
            "Each subcommand has its own --help; man obs-tui. Docs: README.md and docs/.",
        ]
    )


def files_completion(*actions: argparse.Action) -> None:
    """Complete these options' values with file names (bash and zsh)."""
    import shtab

    for action in actions:
        action.complete = shtab.FILE  # type: ignore[attr-defined]


def completion(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell` (bash or zsh), from the parser itself."""
    import shtab

    return shtab.complete(parser, shell=shell)


def _roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def _tagged(pairs: list[tuple[str, str]], bold: bool = True) -> str:
    out = []
    for a, b in pairs:
        out += [".TP", (".B " if bold else "") + _roff(a), _roff(b)]
    return "\n".join(out)


def manpage(parser: argparse.ArgumentParser, version: str) -> str:
    """obs-tui(1) in roff: every subcommand with its options, then examples, files and the
    environment."""
    from argparse_manpage.manpage import Manpage

    epilog, parser.epilog = parser.epilog, None  # the man page has its own sections for it
    try:
        page = Manpage(
            parser,
            _data={
                "project_name": "obs-tui",
                "version": version,
                "manual_title": "obs-tui manual",
                "description": "terminal observability console: eBPF RED, power, carbon and SLO burn rates",
            },
        )
        page.add_section("examples", ">", _tagged(EXAMPLES))
        page.add_section("files", ">", _tagged(files()))
        page.add_section("environment", ">", _tagged(ENVIRONMENT))
        page.add_section("see also", ">", ".BR htop (1),\n.BR prometheus (1)")
        return str(page)
    finally:
        parser.epilog = epilog
        parser._manpage = []  # type: ignore[attr-defined]  # sections live on the parser


def main(argv: list[str]) -> int:
    """`python -m obs_tui.cli_help man|bash|zsh`: what `make install-docs` installs."""
    from obs_tui import __version__
    from obs_tui.cli import build_parser

    if len(argv) != 1 or argv[0] not in ("man", "bash", "zsh"):
        print("usage: python -m obs_tui.cli_help man|bash|zsh", file=sys.stderr)
        return 2
    parser = build_parser()
    print(manpage(parser, __version__) if argv[0] == "man" else completion(parser, argv[0]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
