"""--help, the man page and the shell completions, all generated from the one parser."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from obs_tui.cli import COMMANDS, build_parser
from obs_tui.cli_help import ENVIRONMENT
from tests.test_cli import assert_one_line_error, run_cli


def test_help_has_examples_the_search_path_and_the_environment():
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout
    assert "examples:" in out and "sudo obs-tui snapshot --count 10 --interval 2" in out
    assert "$XDG_CONFIG_HOME/obs-tui/config.toml" in out and "/etc/obs-tui/config.toml" in out
    for name, _ in ENVIRONMENT:
        assert name in out, name
    for name in ("NO_COLOR", "OBS_TUI_DEBUG", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        assert name in out
    for command in COMMANDS:
        assert command in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.parametrize(
    "command, absent, present",
    [
        ("doctor", ["--theme", "--interval", "--keep-root", "--no-mouse", "--delay"], ["--json", "--config"]),
        ("agent", ["--theme", "--read-only", "--no-mouse"], ["--listen", "--interval", "-d TENTHS"]),
        ("snapshot", ["--theme", "--no-mouse"], ["--count", "--csv", "--duration", "--interval"]),
        ("demo", ["--config", "--keep-root", "--prometheus"], ["--theme", "--headless", "--no-mouse"]),
        ("config", ["--theme", "--interval"], ["--default"]),
    ],
)
def test_each_subcommand_offers_only_what_applies(command, absent, present):
    out = run_cli(command, "--help").stdout
    for option in absent:
        assert option not in out, (command, option)
    for option in present:
        assert option in out, (command, option)


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["doctor", "--theme", "mono"], ["unrecognized arguments: --theme"]),
        (["--theme", "mono", "doctor"], ["--theme does not apply to doctor"]),
        (["-d", "5", "doctor"], ["--interval/--delay does not apply to doctor"]),
        (["agent", "--read-only"], ["unrecognized arguments: --read-only"]),
        (["--read-only", "agent"], ["--read-only does not apply to agent"]),
        (["--no-mouse", "snapshot"], ["--no-mouse does not apply to snapshot"]),
        (["-d", "abc"], ["-d/--delay", "tenths"]),
        (["-d", "0"], ["from 1 to 3000 tenths of a second"]),
        (["-d", "5", "--interval", "1"], ["not allowed with"]),
        (["completion", "fish"], ["invalid choice", "fish"]),
    ],
)
def test_options_that_do_not_apply_are_refused(argv, needles):
    assert_one_line_error(run_cli(*argv), *needles)


def test_delay_is_tenths_of_a_second():
    from obs_tui.cli import resolve_config

    parse = build_parser().parse_args
    assert resolve_config(parse(["-d", "5"])).interval == 0.5
    assert resolve_config(parse(["--delay", "15"])).interval == 1.5
    assert resolve_config(parse(["snapshot", "-d", "20"])).interval == 2.0
    assert resolve_config(parse(["--interval", "3"])).interval == 3.0


def _manpage() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui.cli_help", "man"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_man_page_renders_and_names_every_subcommand(tmp_path):
    page = tmp_path / "obs-tui.1"
    page.write_text(_manpage())
    if shutil.which("man"):
        render = [shutil.which("man"), "-l", str(page)]
    elif shutil.which("groff"):
        render = [shutil.which("groff"), "-man", "-Tutf8", str(page)]
    else:
        pytest.skip("neither man nor groff installed")
    result = subprocess.run(
        render,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0", "PAGER": "cat", "MANPAGER": "cat"},
    )
    assert result.returncode == 0, result.stderr
    text = re.sub(".\x08", "", result.stdout)  # man's overstrike bold, when not on a terminal
    assert "warning" not in result.stderr.lower(), result.stderr
    for section in ("NAME", "SYNOPSIS", "EXAMPLES", "FILES", "ENVIRONMENT"):
        assert section in text, section
    for command in COMMANDS:
        assert f"obs-tui {command}" in text, command
    for option in ("--no-mouse", "--delay", "--count", "--csv", "--default"):
        assert option in text.replace("\u2010", "-"), option


def test_install_docs_puts_the_files_where_debian_looks(tmp_path):
    """make install-docs, into a staging root (DESTDIR), as a package build would."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        ["make", "-s", "install-docs", f"DESTDIR={tmp_path}", f"PY={sys.executable}"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    root = tmp_path / "usr/local/share"
    assert (root / "man/man1/obs-tui.1").read_text().startswith(".TH OBS")
    assert (
        "complete -o bashdefault -F _shtab_obs_tui obs-tui"
        in (root / "bash-completion/completions/obs-tui").read_text()
    )
    assert (root / "zsh/site-functions/_obs-tui").read_text().startswith("#compdef obs-tui")


BASH_COMPLETE = r"""
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_shtab_obs_tui
printf '%s\n' "${COMPREPLY[@]}"
"""


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("completion") / "obs-tui.bash"
    result = run_cli("completion", "bash")
    assert result.returncode == 0
    path.write_text(result.stdout)
    return path


def complete(script, *words) -> list[str]:
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH_COMPLETE, "bash", str(script), "obs-tui", *words],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_subcommands_and_their_own_options(bash_script):
    assert complete(bash_script, "") == list(COMMANDS)
    assert complete(bash_script, "sn") == ["snapshot"]
    assert complete(bash_script, "co") == ["config", "completion"]
    doctor = complete(bash_script, "doctor", "--")
    assert "--json" in doctor and "--theme" not in doctor
    assert complete(bash_script, "snapshot", "--csv", "") == ["processes", "services", "slo"]
    assert "--no-mouse" in complete(bash_script, "--")
    # registered for the command as bash-completion would load it
    registered = subprocess.run(
        ["bash", "--norc", "-c", f"source {bash_script}; complete -p obs-tui"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "-F _shtab_obs_tui obs-tui" in registered.stdout
    # and compgen, the builtin completion uses, sees the same words
    words = subprocess.run(
        [
            "bash",
            "--norc",
            "-c",
            f'source {bash_script}; compgen -W "${{_shtab_obs_tui_subparsers[*]}}" -- d',
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.split()
    assert words == ["doctor", "demo"]


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh not installed (scripts/setup.sh test installs it)"
)
def test_zsh_completion_loads_with_compinit(tmp_path):
    functions = tmp_path / "functions"
    functions.mkdir()
    result = run_cli("completion", "zsh")
    assert result.returncode == 0
    (functions / "_obs-tui").write_text(result.stdout)
    assert subprocess.run(["zsh", "-n", str(functions / "_obs-tui")], timeout=30).returncode == 0
    check = subprocess.run(
        [
            "zsh",
            "-f",
            "-c",
            f"fpath=({functions} $fpath); autoload -Uz compinit; "
            f"compinit -u -d {tmp_path}/dump; print -r -- ${{_comps[obs-tui]}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.stdout.strip() == "_obs-tui", check.stderr
    for command in COMMANDS:
        assert f"\n    {command}:" in result.stdout, command
