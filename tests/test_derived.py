"""What is read across a Frame's sections (analysis/derived.py): service totals, processes
with their power, the series /metrics publishes; computed once, and again for recorded frames
(history written before red.totals existed included), so every surface shows the same numbers."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from obs_tui.analysis.derived import derive, http_series, process_rows, red_totals, undecoded_counts
from obs_tui.history.document import frame_from_json
from obs_tui.history.query import window_at
from obs_tui.history.store import FILE_NAME, Store
from obs_tui.model import (
    PowerSection,
    ProcessPower,
    ProcessSample,
    RedSection,
    RedTotals,
    RequestSeries,
    ServiceStats,
)
from obs_tui.snapshot import frame_to_json
from obs_tui.tui import fmt
from obs_tui.tui.panes import PowerPane, RequestsPane
from tests import fake_frames
from tests.history_fixture import FIXTURE
from tests.test_tui import aio, console


def service(pid: int, name: str, requests: int, errors: int, rps: float, **more) -> ServiceStats:
    ratio = errors / requests if requests else 0.0
    return ServiceStats(pid, name, (), requests, errors, rps, ratio, 1.0, 2.0, 3.0, service_name=name, **more)


def test_totals_add_rates_and_take_the_error_ratio_over_all_requests():
    services = [service(1, "a", 300, 3, 30.0), service(2, "b", 100, 5, 10.5), service(3, "c", 0, 0, 0.0)]
    assert red_totals(services) == RedTotals(services=3, rps=40.5, requests=400, errors=8, error_ratio=0.02)
    assert red_totals([]) == RedTotals(services=0, rps=0.0, requests=0, errors=0, error_ratio=0.0)


def test_processes_joined_with_power_then_the_exited_and_idle_with_its_share():
    def proc(pid: int, comm: str) -> ProcessSample:
        return ProcessSample(pid, comm, comm, "root", 1.0, 5.0, 1024)

    power = PowerSection(
        "estimate",
        20.0,
        5.0,
        (("cpu", 20.0),),
        (ProcessPower(7, "gone", 1.0, 4.0, 40.0, 0.2), ProcessPower(2, "b", 2.0, 11.0, 110.0, 0.55)),
        idle_joules=50.0,
    )
    rows = process_rows([proc(1, "a"), proc(2, "b")], power)
    assert [(r.pid, r.comm, r.sample is not None, r.power.watts if r.power else None) for r in rows] == [
        (1, "a", True, None),
        (2, "b", True, 11.0),
        (7, "gone", False, 4.0),  # exited since: known by its power only
    ]
    assert [r.pid for r in process_rows([proc(1, "a")], None)] == [1]
    idle = derive(dataclasses.replace(fake_frames.off_frame(0), power=power)).idle_row
    assert idle is not None and idle.key == "idle" and idle.power is not None
    assert (idle.power.watts, idle.power.joules, idle.power.share) == (5.0, 50.0, 0.25)
    assert derive(fake_frames.off_frame(0)).idle_row is None


def test_series_of_one_process_listed_twice_are_added_and_undecoded_by_service():
    """Read-only mode has no pids: two rows of one service and instance are one series set."""
    one = RequestSeries("GET", "/x", 200, 3, 0.3, (1, 2, 3))
    two = RequestSeries("?", "/x", 200, 2, 0.2, (0, 1, 2))
    a = service(0, "shop", 3, 0, 1.0, series=(one,), undecoded_total=(("tls", 4),))
    b = service(0, "shop", 2, 0, 1.0, series=(one, two), undecoded_total=(("tls", 1), ("http2", 2)))
    red = RedSection(0, (a, b))
    series = {s.labels: (s.count, s.sum_s, s.le_counts) for s in http_series(red)}
    assert series == {
        ("shop", "0", "http", "GET", "/x", 200): (6, 0.6, (2, 4, 6)),
        ("shop", "0", "http", "_OTHER", "/x", 200): (2, 0.2, (0, 1, 2)),
    }
    assert [(u.service_name, u.kind, u.connections) for u in undecoded_counts(red)] == [
        ("shop", "http2", 2),
        ("shop", "tls", 5),
    ]


def test_snapshot_document_holds_the_totals_and_reads_back_the_same():
    frame = fake_frames.full_frame(3)
    services = frame.red.services
    doc = frame_to_json(frame)
    assert doc["red"]["totals"] == {
        "services": len(services),
        "rps": round(sum(s.rps for s in services), 6),
        "requests": sum(s.requests for s in services),
        "errors": sum(s.errors for s in services),
        "error_ratio": round(sum(s.errors for s in services) / sum(s.requests for s in services), 6),
    }
    assert "process_rows" not in doc and "http_series" not in doc  # derived again when read
    back = frame_from_json(doc, frame.taken_at)
    assert frame_to_json(back)["red"]["totals"] == doc["red"]["totals"]  # kept, not derived again
    assert [r.key for r in back.process_rows] == [r.key for r in frame.process_rows]
    assert back.http_series == frame.http_series and back.undecoded == frame.undecoded


def _old_frame(tmp_path):
    """A frame of tests/data/history-schema1.db, recorded before red.totals existed."""
    shutil.copy(FIXTURE, tmp_path / FILE_NAME)
    store = Store(tmp_path)
    taken_at, doc = list(store.frames(0, 2e9))[5]
    store.close()
    assert "totals" not in doc["red"]
    return frame_from_json(doc, taken_at)


def test_history_without_totals_reads_with_them(tmp_path):
    frame = _old_frame(tmp_path)
    assert frame.red.totals == red_totals(frame.red.services)
    assert frame.red.totals.requests == sum(s.requests for s in frame.red.services) > 0
    assert len(frame.process_rows) == len(frame.processes) and frame.idle_row is not None


@aio
async def test_a_replayed_old_frame_shows_its_totals_and_power_rows(tmp_path):
    frame = _old_frame(tmp_path)
    totals = frame.red.totals
    async with console(size=(160, 48)) as (app, pilot):
        app.show_recorded(frame)
        await pilot.pause()
        summary = app.main.query_one(RequestsPane).summary_line._plain
        shown = f"{fmt.num(totals.rps)} rps · err {fmt.pct(100.0 * totals.error_ratio)}"
        assert summary.startswith(f"{len(frame.red.services)} services · {shown}")
        live = app.live_frame.red.totals
        assert fmt.num(live.rps) != fmt.num(totals.rps)  # the recorded frame's, not the live one's
        power = app.main.query_one(PowerPane)
        assert power.items(app.frame) == list(frame.process_rows) and power.table.keys[0] == "idle"
        assert set(power.table.keys[1:]) <= {r.key for r in frame.process_rows}


def test_a_window_of_history_has_the_windows_totals_not_its_last_ticks(tmp_path):
    """`snapshot --at T --duration S` adds up recorded ticks; its totals are the window's,
    history written before red.totals existed included."""
    shutil.copy(FIXTURE, tmp_path / FILE_NAME)
    store = Store(tmp_path)
    try:
        doc = window_at(store, 1_700_000_000.0, 10)
        last = frame_from_json(list(store.frames(0, 2e9))[9][1])
    finally:
        store.close()
    services, totals = doc["red"]["services"], doc["red"]["totals"]
    assert totals["services"] == len(services)
    assert totals["requests"] == sum(s["requests"] for s in services) > last.red.totals.requests
    assert totals["errors"] == sum(s["errors"] for s in services)
    assert totals["rps"] == pytest.approx(sum(s["rps"] for s in services))
    assert totals["error_ratio"] == round(totals["errors"] / totals["requests"], 6)
