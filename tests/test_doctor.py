"""doctor: real checks on this host, and RAPL against fake powercap trees."""

import json
import subprocess
import sys

from obs_tui import doctor
from obs_tui.config import parse


def fake_powercap(root, zones, readable=True):
    for i, name in enumerate(zones):
        zone = root / f"intel-rapl:{i}"
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text("123456\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")
        if not readable:
            (zone / "energy_uj").chmod(0)
    return root


def test_rapl_zones_found(tmp_path):
    check = doctor.check_rapl(str(fake_powercap(tmp_path, ["package-0", "package-1"])))
    assert check.ok and "2 zones" in check.detail and "package-1" in check.detail


def test_rapl_absent_gives_fix(tmp_path):
    check = doctor.check_rapl(str(tmp_path / "none"))
    assert not check.ok and "no RAPL zones" in check.detail and check.fix


def test_prometheus_unreachable_is_a_reason_not_an_error():
    check = doctor.check_prometheus({"url": "http://127.0.0.1:9", "timeout_s": 1})
    assert not check.ok and "cannot connect: Connection refused" in check.detail


def test_prometheus_missing_token_file(tmp_path):
    check = doctor.check_prometheus({"url": "http://127.0.0.1:9", "bearer_token_file": str(tmp_path / "t")})
    assert not check.ok and "bearer_token_file" in check.detail


def test_capabilities_follow_checks():
    checks = [
        doctor.Check("btf", "ebpf", False, "missing", "fix it"),
        doctor.Check("rapl", "rapl", True, "ok"),
    ]
    caps = doctor.capabilities(checks)
    assert not caps["ebpf"].ok and caps["ebpf"].reason == "missing; fix it"
    assert caps["rapl"].ok
    assert not doctor.capabilities(checks, read_only=True)["ebpf"].ok


def test_doctor_json_cli_exits_zero_with_missing_things(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[power]\npowercap_root = "{tmp_path}/none"\n')
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui", "doctor", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    names = {c["name"] for c in doc["checks"]}
    assert {
        "privileges",
        "btf",
        "tracefs",
        "kernel headers",
        "bcc",
        "rapl",
        "prometheus",
        "terminal",
    } <= names
    assert all(c["fix"] for c in doc["checks"] if not c["ok"])


def test_doctor_text_on_this_host():
    checks = doctor.run_checks(parse(""))
    text = doctor.render_text(checks)
    assert "rapl" in text and "fix:" in text


def test_prometheus_reachable_reports_its_version(tmp_path):
    """Against a real Prometheus started here: reachable, with the version it reports."""
    from tests.prometheus_server import prometheus

    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with prometheus(tmp_path) as url:
        check = doctor.check_prometheus({"url": url, "timeout_s": 5, "bearer_token_file": str(token)})
        expected = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split()[
            2
        ]
        config = tmp_path / "c.toml"
        config.write_text(f'[prometheus]\nurl = "{url}"\n')
        result = subprocess.run(
            [sys.executable, "-m", "obs_tui", "doctor", "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert check.ok and url in check.detail and expected in check.detail
    doc = json.loads(result.stdout)
    assert doc["capabilities"]["prometheus"] == {"ok": True, "reason": "", "state": "ok", "stale_since": None}
