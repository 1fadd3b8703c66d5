"""The systemd unit for `obs-tui agent` (systemd/obs-tui-agent.service).

Where systemd runs, `make install-agent` installs and starts it and the agent answers on
/metrics. Where it does not (containers, microVMs like this one), `systemd-analyze verify`
checks the unit, and the agent is run for real inside the unit's capability bounding set with
no_new_privs (setpriv), serving requests it counted with its probes: the part of the
hardening most likely to break eBPF loading.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import servers

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "obs-tui-agent.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(UNIT)
    return parser


def _systemd_running() -> bool:
    if shutil.which("systemctl") is None:
        return False
    state = subprocess.run(["systemctl", "is-system-running"], capture_output=True, text=True).stdout.strip()
    return state in ("running", "degraded")


def test_the_unit_is_hardened():
    service = _unit()["Service"]
    for key, value in (
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("StateDirectory", "obs-tui"),
    ):
        assert service.get(key) == value, key
    assert service["ExecStart"].split()[:2] == ["/usr/local/bin/obs-tui", "agent"]
    caps = set(service["CapabilityBoundingSet"].split())
    assert "CAP_NET_ADMIN" not in caps and "CAP_DAC_OVERRIDE" not in caps and "CAP_SYS_MODULE" not in caps


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    text = UNIT.read_text()
    if not os.access("/usr/local/bin/obs-tui", os.X_OK):  # set up by scripts/setup.sh as root
        text = text.replace("/usr/local/bin/obs-tui", str(Path(sys.prefix) / "bin" / "obs-tui"))
    unit = tmp_path / UNIT.name
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(not _systemd_running(), reason="systemd is not running on this host")
def test_install_agent_starts_the_unit():
    name = UNIT.name
    try:
        subprocess.run(["make", "-C", str(REPO), "install-agent"], check=True, timeout=300)
        assert subprocess.run(["systemctl", "is-active", "--wait", name]).returncode == 0
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5) as response:
                    assert b"obs_build_info" in response.read()
                    break
            except OSError:
                assert time.monotonic() < deadline, subprocess.run(
                    ["journalctl", "-u", name, "-n", "50"], capture_output=True, text=True
                ).stdout
                time.sleep(1)
    finally:
        subprocess.run(["systemctl", "disable", "--now", name], capture_output=True)
        Path("/etc/systemd/system", name).unlink(missing_ok=True)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)


def _bounding_set() -> str:
    """The unit's CapabilityBoundingSet in setpriv's words: -all,+bpf,+perfmon,..."""
    caps = _unit()["Service"]["CapabilityBoundingSet"].split()
    return ",".join(["-all"] + [f"+{c.removeprefix('CAP_').lower()}" for c in caps])


@contextlib.contextmanager
def _agent_in_the_units_bounds(tmp_path):
    port = servers.free_port()
    cache = tmp_path / "cache"
    cache.mkdir()
    conf = tmp_path / "agent.toml"
    conf.write_text("")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(cache)}
    env.pop("SUDO_UID", None)
    env.pop("SUDO_GID", None)
    proc = subprocess.Popen(
        [
            "setpriv",
            "--bounding-set",
            _bounding_set(),
            "--inh-caps",
            "-all",
            "--no-new-privs",
            *servers.agent_command(conf, port, 0.5),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        servers.wait_port(port, proc, timeout=30)
        yield f"http://127.0.0.1:{port}/metrics", proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.skipif(os.geteuid() != 0, reason="loads eBPF programs: needs root")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
def test_the_agent_loads_its_probes_and_drops_root_within_the_units_capabilities(tmp_path):
    from tests.test_red_probes import keepalive

    with (
        servers.python_server(tmp_path, name="unit-test-api") as api,
        _agent_in_the_units_bounds(tmp_path) as (url, proc),
    ):
        deadline = time.monotonic() + 45
        while True:
            keepalive(api.port, ["/health"])
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    text = response.read().decode()
            except urllib.error.HTTPError as exc:  # 503 until the probes are attached
                assert exc.code == 503, exc
                text = ""
            if re.search(
                rf'http_server_request_duration_seconds_count\{{[^}}]*service_name="unit-test-api:{api.port}"',
                text,
            ):
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the agent's probe never counted a request"
            time.sleep(0.5)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uid = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        assert set(uid) == {str(65534)}, status  # dropped to nobody, as the unit expects
