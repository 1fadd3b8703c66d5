"""Pilot tests of the console: every key, the layouts, the too-small notice, the update rules."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time

import pytest

from obs_tui.analysis.derived import derive
from obs_tui.tui import fmt
from obs_tui.tui.app import FrameReady, ObsApp
from obs_tui.tui.panes import CarbonPane, PowerPane, RequestsPane, SloPane
from obs_tui.tui.screens.detail import DetailScreen
from obs_tui.tui.screens.help import HelpScreen
from obs_tui.tui.screens.too_small import TooSmallScreen
from obs_tui.tui.table import KeyedTable
from obs_tui.tui.themes import available_themes, initial_theme, load_theme
from obs_tui.tui.widgets import TextLine
from tests.fake_frames import FakeEngine, full_frame, off_frame


def aio(fn):
    """Run an async test with asyncio.run (no pytest-asyncio plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


def make_app(frame_fn=full_frame, theme="dark", read_only=False) -> ObsApp:
    return ObsApp(lambda: FakeEngine(frame_fn), theme_name=theme, read_only=read_only)


async def started(app: ObsApp, pilot, frames: int = 6, frame_fn=full_frame) -> None:
    """Wait for the engine's first frame, then feed `frames` more (deterministic history)."""
    for _ in range(200):
        if app.frames:
            break
        await pilot.pause(0.01)
    assert app.frames, "the first frame never arrived"
    for i in range(1, frames + 1):
        app.post_message(FrameReady(frame_fn(i), time.monotonic()))
        await pilot.pause()
    await pilot.pause()


@contextlib.asynccontextmanager
async def console(frame_fn=full_frame, *, size, frames: int = 6, theme="dark", read_only=False):
    """The console over FakeEngine's frames at `size`, started (see `started`): (app, pilot)."""
    app = make_app(frame_fn, theme=theme, read_only=read_only)
    async with app.run_test(size=size) as pilot:
        await started(app, pilot, frames=frames, frame_fn=frame_fn)
        yield app, pilot


def table_of(app: ObsApp, cls) -> KeyedTable:
    return app.main.query_one(cls).table


def header_text(app: ObsApp) -> str:
    return app.main.query_one("#header", TextLine)._plain


# ---- start-up and panes ---------------------------------------------------------------------


@aio
async def test_first_tick_waits_briefly_for_the_polled_sources_first_answers():
    """A Prometheus-fed source answers a moment after start: the first frame already has its
    data (the engine's wait_ready), rather than 'waiting' until a second tick."""
    import threading

    from obs_tui.tui.app import FIRST_ANSWER_WAIT_S

    class Polled(FakeEngine):
        def __init__(self):
            super().__init__()
            self.answered = threading.Event()
            threading.Timer(0.1, self.answered.set).start()
            self.waited = None

        def wait_ready(self, timeout_s):
            self.waited = timeout_s
            self.answered.wait(timeout_s)

        def tick(self):
            frame = full_frame(self.ticks) if self.answered.is_set() else off_frame(self.ticks)
            self.ticks += 1
            return frame

    engine = Polled()
    app = ObsApp(lambda: engine, theme_name="dark")
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app, pilot, frames=0)
        assert engine.waited == FIRST_ANSWER_WAIT_S
        assert app.frames == 1 and app.frame.red is not None


@aio
async def test_layout_shows_at_once_with_starting_then_fills():
    slow = asyncio.Event()

    class SlowEngine(FakeEngine):
        def tick(self):
            import time

            while not slow.is_set():
                time.sleep(0.01)
            return super().tick()

    app = ObsApp(lambda: SlowEngine(), theme_name="dark")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "starting" in header_text(app)
        assert all("starting" in p.summary_line._plain for p in app.main.panes)
        slow.set()
        await started(app, pilot, frames=0)
        assert "demo-host" in header_text(app)
        assert table_of(app, PowerPane).keys[:2] == ["idle", 1412]  # Idle pinned first


@aio
async def test_all_panes_populated_and_header_badges():
    async with console(size=(160, 48)) as (app, pilot):
        head = header_text(app)
        for text in (
            "demo-host",
            "up 3d 04:12",
            "every 1s",
            "procs live",
            "red live",
            "power estimate",
            "slo live",
        ):
            assert text in head
        assert table_of(app, RequestsPane).keys == [1412, 2210, 2700, 845]
        assert "checkout-availability" in table_of(app, SloPane).keys
        assert table_of(app, CarbonPane).keys[0] == 1412
        # W and J columns exist only with a power section
        assert "w" in table_of(app, PowerPane).visible_columns()


@aio
async def test_off_frame_says_what_is_missing_and_how_to_fix():
    async with console(off_frame, size=(200, 60)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        assert "power: off" in power._notice and "RAPL" in power._notice
        assert "w" not in power.table.visible_columns()
        red = app.main.query_one(RequestsPane)
        assert "needs root" in red.summary_line._plain and "sudo obs-tui" in red._notice
        assert "obs-tui doctor" in red._notice
        assert red.has_class("-nodata")
        slo = app.main.query_one(SloPane)
        assert "no SLOs configured" in slo.summary_line._plain
        assert "[[slo]]" in slo._notice and "--prometheus" in slo._notice
        carbon = app.main.query_one(CarbonPane)
        assert "needs the power pane's source" in carbon.summary_line._plain
        assert "pane 1 has power" in carbon._notice
        assert "red off: needs root" in header_text(app)


@aio
async def test_read_only_says_so():
    async with console(off_frame, size=(160, 48), read_only=True) as (app, pilot):
        assert "read-only" in header_text(app)
        assert "--prometheus URL" in app.main.query_one(RequestsPane)._notice


@aio
async def test_engine_that_fails_to_start_is_reported():
    def broken():
        raise RuntimeError("bcc exploded")

    app = ObsApp(broken, theme_name="dark")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.start_error:
                break
            await pilot.pause(0.01)
        await pilot.pause()
        assert "bcc exploded" in app.start_error
        assert "engine failed" in app.main.pane.summary_line._plain


# ---- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
@aio
async def test_q_quits_and_closes_engine(key):
    engines = []

    def factory():
        engines.append(FakeEngine())
        return engines[-1]

    app = ObsApp(factory, theme_name="dark")
    async with app.run_test(size=(120, 40)) as pilot:
        await started(app, pilot, frames=0)
        await pilot.press(key)
        await pilot.pause()
        assert app.return_code == 0  # quitting now, not when the test harness ends the app
    assert engines and engines[0].closed


@pytest.mark.parametrize("key", ["question_mark", "f1"])
@aio
async def test_help_opens_and_closes(key):
    async with console(size=(120, 40), frames=1) as (app, pilot):
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main


@aio
async def test_slash_filters_focused_pane_enter_keeps_escape_clears():
    async with console(size=(120, 40)) as (app, pilot):
        await pilot.press("slash")
        await pilot.press(*"gunicorn")
        await pilot.pause()
        power = app.main.query_one(PowerPane)
        assert power.filter_text == "gunicorn"
        assert power.table.keys[0] == "idle"  # pinned: the filter never hides Idle
        assert sorted(power.table.keys[1:]) == [2700, 2701]
        await pilot.press("enter")
        await pilot.pause()
        assert not app.main.query_one("#filter").display
        assert sorted(power.table.keys[1:]) == [2700, 2701]  # kept
        assert "filter: gunicorn" in power.border_subtitle
        await pilot.press("escape")
        await pilot.pause()
        assert power.filter_text == ""
        assert len(power.table.keys) > 2


@pytest.mark.parametrize("key,step", [("greater_than_sign", 1), ("f6", 1), ("less_than_sign", -1)])
@aio
async def test_sort_keys_cycle_sort_column(key, step):
    async with console(size=(160, 48)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        assert power.sort_col == "w"
        await pilot.press(key)
        await pilot.pause()
        expected = "share" if step == 1 else "comm"
        assert power.sort_col == expected
        if expected == "comm":
            comms = [power.table.row(k)[1] for k in power.table.keys[1:]]  # after Idle
            assert comms == sorted(comms, key=str.lower)


@aio
async def test_space_pauses_updates():
    async with console(size=(160, 48)) as (app, pilot):
        await pilot.press("space")
        await pilot.pause()
        assert app.paused and "PAUSED" in header_text(app)
        table = table_of(app, RequestsPane)
        before = table.row(1412)
        repaints = table.repaints
        app.post_message(FrameReady(full_frame(50), time.monotonic()))
        await pilot.pause()
        assert table.row(1412) == before and table.repaints == repaints
        await pilot.press("space")
        await pilot.pause()
        assert not app.paused and table.row(1412) != before


@aio
async def test_enter_opens_detail_with_charts_and_routes():
    async with console(size=(120, 40)) as (app, pilot):
        await pilot.press("tab")  # to the Requests pane
        await pilot.pause()
        assert app.main.pane is app.main.query_one(RequestsPane)
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert "nginx" in screen.spec.title
        assert len(screen.spec.charts) == 3 and len(screen.spec.charts[0].values) >= 6
        routes = screen.query_one(KeyedTable)
        assert ("POST", "/api/checkout") in routes.keys
        n = len(screen.spec.charts[0].values)
        app.post_message(FrameReady(full_frame(60), time.monotonic()))
        await pilot.pause()
        assert len(screen.spec.charts[0].values) == n + 1  # the detail screen moves
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main


@aio
async def test_enter_on_process_detail():
    async with console(size=(80, 24)) as (app, pilot):
        await pilot.press("down", "enter")  # past the pinned Idle row: the top process by W
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.spec.title.startswith("Process 1412")
        assert dict(app.screen.spec.fields)["energy"].endswith("J since start")
        assert [c.label for c in app.screen.spec.charts][:2] == ["W", "CPU %"]


def rapl_frame(i: int):
    """full_frame with measured power: two packages and their DRAM, cores inside, eBPF off."""
    import dataclasses

    frame = full_frame(i)
    power = dataclasses.replace(
        frame.power,
        source="rapl",
        estimate=None,
        cpu_time_source="proc",
        zones=(("package-0", 30.0), ("dram-0", 4.0), ("package-1", 28.0), ("dram-1", 3.5)),
        subzones=(("core-0", 21.0), ("core-1", 19.5)),
        reason="CPU time from /proc: not root and no CAP_BPF+CAP_PERFMON",
    )
    return derive(dataclasses.replace(frame, power=power))


@aio
async def test_measured_power_shows_its_badge_zones_and_why_cpu_time_is_from_proc():
    async with console(rapl_frame, size=(120, 40)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        assert power.border_title == "1 Power per process · RAPL"
        assert "RAPL" in power.summary_line._plain and "idle" in power.summary_line._plain
        host = power.query_one(".host", TextLine)._plain
        assert "package-0 30.0W dram-0 4.00W package-1 28.0W" in host and "within: core-0" in host
        assert "CPU time from /proc" in power._notice


@aio
async def test_enter_on_idle_shows_the_host_and_how_it_was_estimated():
    async with console(size=(80, 24)) as (app, pilot):
        await pilot.press("enter")
        await pilot.pause()
        spec = app.screen.spec
        assert spec.title == "Host power (estimate)"
        fields = dict(spec.fields)
        assert fields["per vCPU"] == "0.64–3.97 W (Cascade Lake)"
        assert fields["chosen from"] == "CCF's table, by CPU model" and "zone cpu" in fields
        assert "cloud-carbon-footprint" in spec.note


@aio
async def test_tab_moves_between_panes_and_back():
    async with console(size=(120, 40), frames=1) as (app, pilot):
        order = []
        for _ in range(4):
            order.append(type(app.main.pane).__name__)
            await pilot.press("tab")
            await pilot.pause()
        assert order == ["PowerPane", "RequestsPane", "SloPane", "CarbonPane"]
        assert type(app.main.pane).__name__ == "PowerPane"
        await pilot.press("shift+tab")
        await pilot.pause()
        assert type(app.main.pane).__name__ == "CarbonPane"
        assert app.focused is app.main.pane.table


@pytest.mark.parametrize("key,index", [("1", 0), ("2", 1), ("3", 2), ("4", 3)])
@aio
async def test_number_maximises_and_again_restores(key, index):
    async with console(size=(160, 48)) as (app, pilot):
        await pilot.press(key)
        await pilot.pause()
        panes = app.main.panes
        assert app.main.zoomed == index
        assert [p.display for p in panes].count(True) == 1 and panes[index].display
        assert panes[index].size.height >= 40
        await pilot.press(key)
        await pilot.pause()
        assert app.main.zoomed is None and all(p.display for p in panes)


@aio
async def test_hidden_panes_are_not_updated():
    async with console(size=(160, 48)) as (app, pilot):
        await pilot.press("1")
        await pilot.pause()
        red = table_of(app, RequestsPane)
        before = red.repaints
        app.post_message(FrameReady(full_frame(40), time.monotonic()))
        await pilot.pause()
        assert red.repaints == before
        assert table_of(app, PowerPane).repaints > 0


@aio
async def test_modal_screen_blocks_main_updates():
    async with console(size=(160, 48)) as (app, pilot):
        await pilot.press("f1")
        await pilot.pause()
        power = table_of(app, PowerPane)
        before = power.repaints
        app.post_message(FrameReady(full_frame(41), time.monotonic()))
        await pilot.pause()
        assert power.repaints == before
        await pilot.press("escape")
        await pilot.pause()
        await pilot.pause()
        assert power.repaints > before  # caught up on return


@aio
async def test_T_cycles_themes():
    async with console(size=(120, 40), frames=1) as (app, pilot):
        seen = [app.theme]
        for _ in range(3):
            await pilot.press("T")
            await pilot.pause()
            seen.append(app.theme)
        assert seen == ["dark", "light", "mono", "dark"]


@aio
async def test_arrow_keys_move_and_scroll():
    async with console(size=(80, 24)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        table = power.table
        cap = table.capacity
        assert 0 < cap < len(full_frame(0).processes)
        await pilot.press(*["down"] * (cap + 2))
        await pilot.pause()
        assert table.cursor == cap - 1 and power.row_offset == 3
        await pilot.press("home")
        await pilot.pause()
        assert power.row_offset == 0 and table.cursor == 0


# ---- sizes ----------------------------------------------------------------------------------


@aio
async def test_narrow_layout_stacks_with_focused_pane_large():
    async with console(size=(80, 24)) as (app, pilot):
        body = app.main.query_one("#body")
        assert body.has_class("narrow")
        power, red, slo, carbon = app.main.panes
        assert power.table.capacity >= 8
        for p in (red, slo, carbon):
            assert p.is_compact and p.size.height <= 2
            assert p.summary_line._plain
        await pilot.press("tab")
        await pilot.pause()
        await pilot.pause()
        assert red.table.capacity >= 5 and power.is_compact


@aio
async def test_wide_layout_is_a_grid():
    async with console(size=(200, 60)) as (app, pilot):
        assert not app.main.query_one("#body").has_class("narrow")
        regions = [p.region for p in app.main.panes]
        assert regions[0].y == regions[1].y and regions[0].x < regions[1].x
        assert regions[2].y > regions[0].y


@aio
async def test_too_small_notice_and_recovery():
    async with console(size=(50, 12), frames=1) as (app, pilot):
        assert isinstance(app.screen, TooSmallScreen)
        text = str(app.screen.query_one("#msg").render())
        assert "too small" in text and "60x16" in text
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await pilot.pause()
        assert app.screen is app.main


# ---- the update rules -----------------------------------------------------------------------


@aio
async def test_same_frame_twice_repaints_nothing():
    async with console(size=(160, 48), frames=3) as (app, pilot):
        frame = full_frame(3)
        tables = [p.table for p in app.main.panes]
        app.post_message(FrameReady(frame, time.monotonic()))
        await pilot.pause()
        before = [t.repaints for t in tables]
        # a frame equal to the last one: nothing in any table changes text... except the
        # sparklines, which advance with the history; so feed it again with the history held
        app.history.record = lambda frame: None
        app.post_message(FrameReady(frame, time.monotonic()))
        await pilot.pause()
        assert [t.repaints for t in tables] == before


@aio
async def test_only_changed_cells_are_repainted():
    async with console(size=(160, 48), frames=3) as (app, pilot):
        table = table_of(app, PowerPane)
        before = table.repaints
        app.history.record = lambda frame: None
        import dataclasses

        frame = full_frame(3)
        procs = list(frame.processes)
        procs[0] = dataclasses.replace(procs[0], rss_bytes=procs[0].rss_bytes + 50 * 2**20)
        changed = derive(dataclasses.replace(frame, processes=tuple(procs)))
        app.post_message(FrameReady(changed, time.monotonic()))
        await pilot.pause()
        assert table.repaints - before == 1


@aio
async def test_table_walks_only_shown_rows():
    async with console(size=(80, 24)) as (app, pilot):
        power = app.main.query_one(PowerPane)
        calls = []
        real = power.cells
        power.cells = lambda item: calls.append(item.key) or real(item)
        app.post_message(FrameReady(full_frame(30), time.monotonic()))
        await pilot.pause()
        assert 0 < len(calls) == power.table.capacity < len(full_frame(0).processes)


# ---- themes and formatting ------------------------------------------------------------------


def test_themes_load_and_unknown_names_list_valid_ones():
    assert available_themes()[:3] == ["dark", "light", "mono"]
    for name in ("dark", "light", "mono", "16color"):
        assert load_theme(name).name in ("dark", "light", "mono")
    with pytest.raises(ValueError, match="valid themes: dark, light, mono"):
        load_theme("solarized")


def test_no_color_forces_mono(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert initial_theme("light") == "mono"
    monkeypatch.delenv("NO_COLOR")
    assert initial_theme("light") == "light"


@aio
async def test_no_color_app_uses_mono(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    async with console(size=(80, 24), frames=1, theme="dark") as (app, pilot):
        assert app.theme == "mono" and app.no_color


def test_formatting_is_compact():
    assert fmt.num(1234) == "1.2k" and fmt.num(0.5) == "0.5"
    assert fmt.pct(12.34) == "12.3%" and fmt.ratio_pct(0.0123) == "1.2%"
    assert fmt.ms(45.3) == "45.3ms" and fmt.ms(1234) == "1.23s" and fmt.ms(0.42) == "0.42ms"
    assert fmt.size(1536) == "1.5K" and fmt.size(3 * 2**30) == "3.0G"
    assert fmt.cpu_time(83.45) == "1:23.45" and fmt.cpu_time(83.45, fine=False) == "1:23"
    assert fmt.uptime(3 * 86400 + 4 * 3600 + 12 * 60) == "3d 04:12"
    assert fmt.spark([0, 1, 2, 4, 8], 6, floor=1) == "  ▂▃▅█"
    assert fmt.spark([], 3) == "   "


@aio
async def test_lost_events_are_shown_in_the_requests_summary():
    import dataclasses

    def lossy(i):
        frame = full_frame(i)
        lost_now = 7 if i < 3 else 0  # lossy at first, then clean: the loss must stay visible
        red = dataclasses.replace(frame.red, lost_events=lost_now, lost_since_attach=7)
        return dataclasses.replace(frame, red=red)

    async with console(lossy, size=(160, 48), frames=0) as (app, pilot):
        red = app.main.query_one(RequestsPane)
        app.post_message(FrameReady(lossy(1), time.monotonic()))
        await pilot.pause()
        assert "lost 7 events" in red.summary_line._plain
        app.post_message(FrameReady(lossy(5), time.monotonic()))
        await pilot.pause()
        assert "7 lost since start" in red.summary_line._plain


# ---- carbon ---------------------------------------------------------------------------------


@aio
async def test_carbon_pane_rates_source_estimate_and_per_request_figures():
    async with console(size=(80, 24)) as (app, pilot):
        await pilot.press("4")  # zoom the Carbon pane
        await pilot.pause()
        pane = app.main.query_one(CarbonPane)
        frame = full_frame(6)
        c = frame.carbon
        summary = pane.summary_line._plain
        assert f"host {fmt.grams(c.host_g_per_h)}/h" in summary and f"{c.kg_per_day:.2f} kg/day" in summary
        assert "279 g/kWh region table" in summary and "PUE 1.14" in summary and "est" in summary
        assert "aws:eu-west-1 (EEA via CCF, year n/s)" in pane._notice
        assert "PUE 1.135 (region aws)" in pane._notice and "estimate (no RAPL)" in pane._notice
        # the busiest services' per-request figures, above the long process list
        nginx = next(p for p in c.processes if p.pid == 1412)
        totals = pane.query_one(".totals").markup
        assert (
            f"per request: nginx {fmt.joules(nginx.joules_per_request)} "
            f"{fmt.grams(nginx.g_per_1k_requests)}/1k, python3"
        ) in totals
        assert f"{fmt.grams(c.host_grams)} since start" in totals
        assert "since start" not in pane._notice  # the notice holds nothing that moves
        assert "embodied" in pane._notice
        table = pane.table
        assert table.keys[0] == 1412  # nginx: the top g/h
        nginx = next(p for p in c.processes if p.pid == 1412)
        cols = [col.key for col in CarbonPane.COLUMNS]

        def cell(key, col):
            value = table.row(key)[cols.index(col)]
            return value if isinstance(value, str) else value[0]

        assert cell(1412, "jreq") == fmt.joules(nginx.joules_per_request)
        assert cell(1412, "g1k") == fmt.grams(nginx.g_per_1k_requests)
        assert cell(3301, "jreq") == fmt.DASH  # postgres answers no HTTP


@aio
async def test_requests_detail_shows_energy_per_request():
    async with console(size=(120, 40)) as (app, pilot):
        await pilot.press("tab", "enter")
        await pilot.pause()
        fields = dict(app.screen.spec.fields)
        nginx = next(p for p in app.frame.carbon.processes if p.pid == 1412)
        assert fields["energy per request"] == fmt.joules(nginx.joules_per_request)
        assert fields["CO2e per 1,000 requests"] == fmt.grams(nginx.g_per_1k_requests)


def test_small_energies_and_masses_keep_their_digits():
    assert [fmt.joules(v) for v in (0.000123, 0.0029, 0.05, 0.09996, 615.9)] == [
        "123µJ",
        "2.9mJ",
        "50mJ",
        "100mJ",
        "615.9J",
    ]
    assert [fmt.grams(v) for v in (0.0, 1.67e-5, 0.0002, 0.5, 1500.0)] == [
        "0g",
        "16.7µg",
        "0.2mg",
        "0.50g",
        "1.50kg",
    ]


@aio
async def test_carbon_join_badge_only_when_it_fails():
    from dataclasses import replace as dc_replace

    from obs_tui.model import SourceStatus

    stale = [False]

    def frame_fn(i):
        f = full_frame(i)
        carbon = SourceStatus(
            "carbon", "estimate", "join failed: ValueError: x" if stale[0] else "", stale=stale[0], join=True
        )
        return dc_replace(f, sources=f.sources + (carbon,))

    app = ObsApp(lambda: FakeEngine(frame_fn), theme_name="dark")
    async with app.run_test(size=(160, 48)) as pilot:
        await started(app, pilot, frame_fn=frame_fn)
        assert "carbon" not in header_text(app)  # power's badge already says "estimate"
        stale[0] = True
        await started(app, pilot, frames=1, frame_fn=frame_fn)
        assert "carbon stale" in header_text(app)
        assert "carbon: stale — join failed" in app.main.query_one(CarbonPane)._notice


@aio
async def test_choosing_a_host_names_it_only_with_its_own_numbers():
    """i asks the engine for the next host (under its lock) and polls at once: the header
    names the host of the frame it shows, never one chosen before that host's numbers came."""
    import dataclasses

    hosts = ("a:9100", "b:9100")

    class Fleet(FakeEngine):
        def __init__(self):
            super().__init__(
                lambda i: dataclasses.replace(full_frame(i), instances=hosts, instance=self.shown)
            )
            self.shown = ""
            self.chosen: list[str] = []

        def cycle_instance(self, step: int = 1) -> str:
            choices = ("", *hosts)
            self.shown = choices[(choices.index(self.shown) + step) % len(choices)]
            self.chosen.append(self.shown)
            return self.shown

    engine = Fleet()  # its interval is an hour: only the poll that i starts brings a frame
    app = ObsApp(lambda: engine, theme_name="dark", read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(app, pilot, frames=0)
        assert "all 2 hosts" in header_text(app)
        for want in ("a:9100", "b:9100", ""):
            ticks = engine.ticks
            await pilot.press("i")
            for _ in range(200):
                shown = app.frame.instance
                assert (want in header_text(app)) == (shown == want) or not want
                if engine.ticks > ticks and shown == want:
                    break
                await pilot.pause(0.01)
            assert app.frame.instance == want and engine.ticks == ticks + 1
        assert engine.chosen == ["a:9100", "b:9100", ""] and "all 2 hosts" in header_text(app)


@aio
async def test_i_without_a_fleet_rings_the_bell():
    async with console(size=(120, 40), frames=1) as (app, pilot):
        engine = app.engine
        ticks, bells = engine.ticks, []
        app.bell = lambda: bells.append(1)
        await pilot.press("i")
        await pilot.pause()
        assert bells == [1] and engine.ticks == ticks  # no fleet: nothing chosen, nothing polled
