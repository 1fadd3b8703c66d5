"""obs-tui as users install it: a non-editable wheel in a fresh venv, nothing from the checkout.

The wheel must carry the probes (bpf/ -> obs_tui.bpf) and the themes (themes/ ->
obs_tui.themes): the installed `obs-tui doctor` compiles a probe, `snapshot` loads the real
RED and CPU-time probes from the installed package, and the console draws its themes.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _declared_packages() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["packages"]


def test_every_package_under_obs_tui_is_declared():
    """pyproject lists its packages (bpf/ and themes/ are mapped in); a new one must be added."""
    found = sorted(
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "obs_tui").rglob("__init__.py")
    )
    missing = [name for name in found if name not in _declared_packages()]
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"


def test_no_module_finds_files_relative_to_the_checkout():
    """Files shipped with the package are found with importlib.resources, never by walking up
    from __file__ (which points outside the package once installed)."""
    offenders = []
    for path in (REPO / "obs_tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "parents":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "parent"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "parent"
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders


@pytest.fixture(scope="module")
def installed():
    """A wheel built from a copy of the working tree, installed in a fresh venv that sees
    Debian's bcc (system site-packages). The directory is world-readable: the console drops
    root to nobody, who must read the code it imports lazily."""
    top = Path(tempfile.mkdtemp(prefix="obs-tui-wheel-"))
    os.chmod(top, 0o755)
    try:
        tree = top / "src"
        shutil.copytree(
            REPO,
            tree,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "__pycache__",
                "build",
                "*.egg-info",
                ".pytest_cache",
                ".mypy_cache",
                ".ruff_cache",
                "screenshots",
            ),
        )
        wheels = top / "wheels"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                str(wheels),
                str(tree),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        wheel = next(wheels.glob("obs_tui-*.whl"))
        venv = top / "venv"
        subprocess.run(
            ["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120
        )
        subprocess.run(
            [str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
        yield wheel, venv
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run(venv: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # From / and without PYTHONPATH: nothing of the checkout can be imported by accident.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(venv / "bin/obs-tui"), *argv], capture_output=True, text=True, cwd="/", env=env, timeout=timeout
    )


@pytest.mark.slow
def test_the_wheel_carries_the_probes_and_the_themes(installed):
    wheel, venv = installed
    names = zipfile.ZipFile(wheel).namelist()
    for name in (
        "obs_tui/bpf/red.c",
        "obs_tui/bpf/cputime.c",
        "obs_tui/themes/dark.toml",
        "obs_tui/themes/light.toml",
        "obs_tui/themes/mono.toml",
        "obs_tui/probe_constants.py",
    ):
        assert name in names, name
    shipped = {n for n in names if n.startswith("obs_tui/") and n.endswith(".py")}
    for path in (REPO / "obs_tui").rglob("*.py"):
        assert path.relative_to(REPO).as_posix() in shipped, path
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import obs_tui; print(obs_tui.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.skipif(os.geteuid() != 0, reason="loads eBPF programs: needs root")
def test_installed_doctor_compiles_a_probe_and_snapshot_loads_the_real_ones(installed):
    _, venv = installed
    doctor = _run(venv, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["probe compile"]["ok"], checks["probe compile"]
    snap = _run(venv, "snapshot", "--json", "--duration", "0.5")
    assert snap.returncode == 0, snap.stderr
    caps = json.loads(snap.stdout)["capabilities"]
    assert caps["ebpf"]["ok"], caps["ebpf"]  # red.c compiled from obs_tui/bpf with the -D constants


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_installed_console_draws_its_themes(installed):
    _, venv = installed
    bad = _run(venv, "--theme", "nosuch")
    assert bad.returncode == 2
    assert "valid themes: dark, light, mono" in bad.stderr  # the three files were found
    socket = f"wheel_{os.getpid()}"
    screens = {}
    try:
        for theme in ("light", "dark"):
            subprocess.run(
                [
                    "tmux",
                    "-L",
                    socket,
                    "new-session",
                    "-d",
                    "-s",
                    theme,
                    "-x",
                    "120",
                    "-y",
                    "40",
                    "-e",
                    "TERM=tmux-256color",
                    "-e",
                    "COLORTERM=truecolor",
                    "-c",
                    "/",
                    "--",
                    str(venv / "bin/obs-tui"),
                    "--read-only",
                    "--theme",
                    theme,
                ],
                check=True,
            )
            deadline = time.monotonic() + 30
            screen = ""
            while "Requests" not in screen:
                assert time.monotonic() < deadline, f"the console never drew ({theme}):\n{screen}"
                time.sleep(0.2)
                screen = subprocess.run(
                    ["tmux", "-L", socket, "capture-pane", "-p", "-t", theme], capture_output=True, text=True
                ).stdout
            time.sleep(0.5)
            screens[theme] = subprocess.run(
                ["tmux", "-L", socket, "capture-pane", "-e", "-p", "-t", theme],
                capture_output=True,
                text=True,
            ).stdout
            subprocess.run(["tmux", "-L", socket, "send-keys", "-t", theme, "q"])
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    assert screens["light"] != screens["dark"]  # the same screen in two different themes' colours
