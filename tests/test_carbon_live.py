"""Energy per request on a real HTTP server under load: the eBPF RED probe counts its requests,
the power estimator attributes it watts, and the carbon join divides one by the other.
joules_per_request must be exactly attributed W / rps, in the Frame and in `snapshot --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest

from obs_tui import config
from obs_tui.pipeline import make_engine
from obs_tui.snapshot import frame_to_json
from tests import servers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="eBPF probes need root")

CONFIG = '[carbon]\nregion = "gcp:europe-west1"\n'  # 212 g/kWh (Google 2020 via CCF), PUE 1.1
PATHS = ["/users/{i}", "/orders/{i}/items", "/health"]


@contextmanager
def loaded_python_server(tmp_path, clients: int = 2):
    stop = threading.Event()
    with servers.python_server(tmp_path) as server:
        threads = [
            threading.Thread(target=servers._client, args=(server.port, PATHS, stop), daemon=True)
            for _ in range(clients)
        ]
        for t in threads:
            t.start()
        try:
            yield server
        finally:
            stop.set()
            for t in threads:
                t.join(5)


def _by_pid(items, pid):
    return next((item for item in items if item["pid"] == pid), None)


def test_frame_joules_per_request_is_attributed_watts_over_rps(tmp_path):
    import time

    with loaded_python_server(tmp_path) as server:
        engine = make_engine(config.parse(CONFIG), read_only=False)
        try:
            engine.tick()
            time.sleep(2.0)
            frame = engine.tick()
        finally:
            engine.close()
    assert frame.power is not None and frame.red is not None and frame.carbon is not None
    service = next(s for s in frame.red.services if s.pid == server.pid)
    watts = next(p for p in frame.power.processes if p.pid == server.pid).watts
    carbon = next(p for p in frame.carbon.processes if p.pid == server.pid)
    assert service.rps > 20, "the clients keep the server busy"
    assert watts > 0, "a busy server is attributed power"
    assert carbon.rps == service.rps and carbon.watts == watts
    assert carbon.joules_per_request == pytest.approx(watts / service.rps, rel=1e-12)
    assert carbon.g_per_1k_requests == pytest.approx(
        1000 * watts / service.rps / 3.6e6 * 1.1 * 212.0, rel=1e-12
    )
    assert frame.carbon.intensity_source == "region" and frame.carbon.pue == 1.1
    assert frame.carbon.power_source == frame.power.source  # "estimate" here: no RAPL
    assert frame.source("carbon").mode == ("live" if frame.power.source == "rapl" else "estimate")
    json.dumps(frame_to_json(frame), allow_nan=False)  # never inf or NaN


def test_snapshot_json_joules_per_request(tmp_path):
    conf = tmp_path / "config.toml"
    conf.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    (tmp_path / "srv").mkdir()
    with loaded_python_server(tmp_path / "srv") as server:
        result = subprocess.run(
            [sys.executable, "-m", "obs_tui", "snapshot", "--json", "--duration", "2", "--config", str(conf)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    service = _by_pid(doc["red"]["services"], server.pid)
    power = _by_pid(doc["power"]["processes"], server.pid)
    carbon = _by_pid(doc["carbon"]["processes"], server.pid)
    assert service["rps"] > 20 and power["watts"] > 0
    # the JSON rounds to 6 decimals: compare at that precision
    assert carbon["joules_per_request"] == pytest.approx(power["watts"] / service["rps"], abs=2e-6)
    assert doc["carbon"]["intensity_label"] == "gcp:europe-west1 (Google via CCF, 2020)"
    assert doc["carbon"]["grid_g_per_kwh"] == 212.0 and doc["carbon"]["pue_source"] == "region gcp"
    idle = [p for p in doc["carbon"]["processes"] if p["rps"] is None]
    assert idle and all(p["joules_per_request"] is None for p in idle)
