"""`snapshot` from the real CLI: JSON by default, NDJSON frames with --count, CSV tables."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime

import pytest

from obs_tui.snapshot_tables import columns


def snapshot(*argv, timeout=120):
    # as a user would start it: without the BCC_KERNEL_SOURCE of other tests' in-process probes
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    result = subprocess.run(
        [sys.executable, "-m", "obs_tui", "snapshot", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_json_without_the_json_flag():
    doc = json.loads(snapshot("--duration", "1.2"))
    assert doc["schema"] == 1 and doc["power"]["processes"]


def test_count_streams_exactly_n_ndjson_frames():
    out = snapshot("--count", "3", "--interval", "0.4")
    lines = out.splitlines()
    assert len(lines) == 3 and out.endswith("\n")
    docs = [json.loads(line) for line in lines]
    times = [datetime.fromisoformat(d["taken_at"]) for d in docs]
    assert times == sorted(times)
    for doc in docs:
        assert doc["schema"] == 1 and doc["sources"]["procs"]["mode"] == "live"
    # every frame after the first covers one interval
    for doc in docs[1:]:
        assert doc["duration_s"] == pytest.approx(0.4, abs=0.2)


def test_count_with_json_flag_and_delay_in_tenths():
    lines = snapshot("--json", "--count", "2", "-d", "3").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["schema"] == 1 for line in lines)


def test_stream_stops_cleanly_when_the_reader_goes():
    """`snapshot --count 50 | head -n 1`: one line, no traceback, no 50 seconds of waiting."""
    env = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    result = subprocess.run(
        f"{sys.executable} -m obs_tui snapshot --count 50 --interval 0.3 | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert len(result.stdout.splitlines()) == 1 and json.loads(result.stdout)["schema"] == 1
    assert "Traceback" not in result.stderr and "Broken pipe" not in result.stderr


def _table(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_processes_has_a_header_and_rows():
    out = snapshot("--csv", "processes", "--duration", "1.2")
    header = out.splitlines()[0].split(",")
    assert header == columns("processes")
    assert header[:4] == ["taken_at", "host", "pid", "comm"] and "watts" in header
    rows = _table(out)
    assert len(rows) > 3
    assert all(int(r["pid"]) > 0 and float(r["watts"]) >= 0 for r in rows)
    assert {r["host"] for r in rows} == {os.uname().nodename}


def test_csv_stream_has_one_header_and_each_frames_rows():
    out = snapshot("--csv", "processes", "--count", "2", "--interval", "1")
    assert out.count("taken_at,host,") == 1
    assert len({r["taken_at"] for r in _table(out)}) >= 1 and len(_table(out)) > 3


def test_csv_services_and_slo_headers_without_rows():
    """With no server traffic and no SLOs: the header alone, so a script still knows the columns."""
    services = snapshot("--csv", "services", "--duration", "1.2").splitlines()[0].split(",")
    assert {"pid", "comm", "ports", "requests", "errors", "p99_ms"} <= set(services)
    slo = snapshot("--csv", "slo", "--duration", "1.2")
    assert slo.splitlines() == [",".join(columns("slo"))]
    assert "burn_rate_1h" in columns("slo") and "burn_rates" not in columns("slo")


def test_csv_services_from_a_real_server():
    import http.client
    import threading
    import time

    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split()[0])
        stop = threading.Event()

        def load():
            while not stop.is_set():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                time.sleep(0.02)

        worker = threading.Thread(target=load, daemon=True)
        worker.start()
        try:
            out = snapshot("--csv", "services", "--duration", "2")
        finally:
            stop.set()
            worker.join(5)
    finally:
        server.terminate()
        server.wait(10)
    rows = [r for r in _table(out) if str(port) in r["ports"].split()]
    assert rows and int(rows[0]["requests"]) > 0 and rows[0]["pid"] == str(server.pid)
