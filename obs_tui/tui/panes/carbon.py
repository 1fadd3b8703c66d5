"""Pane 4: carbon (gCO2e) per process and per request, from attributed power, grid intensity
and PUE (the carbon join in the engine; the formulas are in analysis/carbon.py)."""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult

from obs_tui.model import CarbonSection, Frame, ProcessCarbon
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason
from obs_tui.tui.table import Column, KeyedTable
from obs_tui.tui.widgets import TextBlock, TextLine

INTENSITY_SOURCE = {"config": "config", "region": "region table", "query": "live query", "default": "default"}


def per_request(c: CarbonSection | None, pid: int) -> tuple[str, str]:
    """(J per request, gCO2e per 1,000 requests) of a process as text: a dash when it answered
    no requests in the window or when carbon is off. Shared with the Requests pane's detail."""
    pc = None if c is None else next((p for p in c.processes if p.pid == pid), None)
    if pc is None or pc.joules_per_request is None:
        return fmt.DASH, fmt.DASH
    return fmt.joules(pc.joules_per_request), fmt.grams(pc.g_per_1k_requests)


def _dash_if_none(text: str, value: float | None) -> tuple[str, str] | str:
    return (fmt.DASH, "muted") if value is None else text


class CarbonPane(Pane):
    NUMBER = 4
    TITLE = "Carbon"
    COLUMNS = [
        Column("comm", "COMM", 10, align="left", flex=True, priority=9, ident=True),
        Column("pid", "PID", 7, priority=6, ident=True),
        Column("w", "W", 6, priority=4),
        Column("gph", "g/h", 7, priority=9),
        Column("d_gph", "Δg/h", 7, priority=7),
        Column("g", "g total", 7, priority=5),
        Column("jreq", "J/req", 7, priority=8),
        Column("g1k", "g/1k req", 8, priority=7),
        # No per-row trend: a process's g/h is its watts times a constant, so it would redraw,
        # every second, the same curve as the Power pane's trend (its detail screen has it).
    ]
    SORTS = {
        "comm": (lambda c: c.comm.lower(), False),
        "pid": (lambda c: c.pid, False),
        "w": (lambda c: c.watts, True),
        "gph": (lambda c: c.g_per_h, True),
        "g": (lambda c: c.grams, True),
        "jreq": (lambda c: -1.0 if c.joules_per_request is None else c.joules_per_request, True),
        "g1k": (lambda c: -1.0 if c.g_per_1k_requests is None else c.g_per_1k_requests, True),
    }
    DEFAULT_SORT = "gph"
    FILTER_HINT = "process"
    CHANGES = {"d_gph": 4}

    DEFAULT_CSS = """
    CarbonPane > .totals { color: $foreground; padding: 0 1; }
    CarbonPane.-nototals > .totals, CarbonPane.-compact > .totals { display: none; }
    """

    def items(self, frame: Frame) -> list[ProcessCarbon] | None:
        return None if frame.carbon is None else list(frame.carbon.processes)

    def key(self, item: ProcessCarbon) -> Hashable:
        return item.pid

    def text(self, item: ProcessCarbon) -> str:
        return f"{item.pid} {item.comm}"

    def cells(self, c: ProcessCarbon) -> tuple:
        return (
            c.comm or "?",
            str(c.pid),
            fmt.watts(c.watts),
            fmt.grams(c.g_per_h),
            self.change_cell(c, "d_gph"),
            fmt.grams(c.grams),
            _dash_if_none(fmt.joules(c.joules_per_request), c.joules_per_request),
            _dash_if_none(fmt.grams(c.g_per_1k_requests), c.g_per_1k_requests),
        )

    def summary(self, frame: Frame, items: list | None) -> str:
        c = frame.carbon
        if c is None:
            return "[$text-muted]off — needs the power pane's source[/]"
        text = (
            f"host {fmt.grams(c.host_g_per_h)}/h · {c.kg_per_day:.2f} kg/day · "
            f"{c.grid_g_per_kwh:.0f} g/kWh {INTENSITY_SOURCE.get(c.intensity_source, '')}"
            f" · PUE {c.pue:.2f}"
        )
        if c.power_source != "rapl":
            text += " · [$warning]est[/]"
        return text

    def notice(self, frame: Frame) -> tuple[str, bool]:
        c = frame.carbon
        status = frame.source("carbon")
        if c is None:
            if frame.power is None:
                return (
                    "gCO2e = energy × grid intensity × PUE: shown once pane 1 has power "
                    "(RAPL or the estimator); intensity and PUE come from "
                    + escape("[carbon]")
                    + " in the config"
                ), True
            mode, reason = source_reason(frame, "carbon")
            return f"carbon: {mode} — {escape(reason or 'no carbon section in this frame')}", True
        stale = status is not None and status.stale
        lines = (
            [f"[$error]carbon: stale — {escape(status.reason)}[/]"] if status is not None and stale else []
        )
        info = f"grid {escape(c.intensity_label)} · PUE {c.pue:g} ({escape(c.pue_source)})"
        if c.embodied_g_per_h is not None:
            info += f" · embodied {fmt.grams(c.embodied_g_per_h)}/h (SCI, in kg/day)"
        if c.intensity_source == "default":  # a guess: say how to do better
            info = f"[$warning]{info}; set carbon.region or carbon.grid_g_per_kwh[/]"
        else:
            info = f"[$text-muted]{info}[/]"
        if c.power_source != "rapl":
            info = "[$warning]estimate (no RAPL)[/] · " + info
        lines.append(info)
        return "\n".join(lines), not stale and c.power_source == "rapl"

    @staticmethod
    def totals_line(c: CarbonSection | None, top: int = 2) -> str:
        """The figures that move every tick, on one line of their own, so the notice above
        (how the figures are made) is not redrawn with them: the host's grams since start and
        the busiest services' per-request figures, above a long process list."""
        if c is None:
            return ""
        line = f"{fmt.grams(c.host_grams)} since start"
        services = sorted(
            (p for p in c.processes if p.joules_per_request is not None), key=lambda p: -(p.rps or 0.0)
        )[:top]
        if services:
            line += " · per request: " + ", ".join(
                f"{escape(p.comm)} {fmt.joules(p.joules_per_request)} {fmt.grams(p.g_per_1k_requests)}/1k"
                for p in services
            )
        return line

    def compose(self) -> ComposeResult:
        yield TextLine("starting…", classes="summary")
        yield TextBlock(classes="notice")
        yield TextLine("", classes="totals")
        yield KeyedTable(self.COLUMNS)

    def show(self, frame: Frame, history) -> None:
        super().show(frame, history)
        if not self.is_compact:
            line = self.totals_line(frame.carbon)
            self.query_one(".totals", TextLine).set(line)
            self.set_class(not line, "-nototals")

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame, h = self.frame, self.history
        if frame is None or h is None or frame.carbon is None:
            return None
        c = next((x for x in frame.carbon.processes if x.pid == key), None)
        if c is None:
            return None
        cs = frame.carbon
        jreq, g1k = per_request(cs, c.pid)
        fields = [
            ("process", c.comm or "?"),
            ("PID", str(c.pid)),
            ("power", f"{fmt.watts(c.watts)} ({'RAPL' if cs.power_source == 'rapl' else 'estimate'})"),
            ("emissions", f"{fmt.grams(c.g_per_h)} per hour"),
            ("since start", fmt.grams(c.grams)),
            ("request rate", fmt.DASH if c.rps is None else f"{fmt.num(c.rps)} rps"),
            ("energy per request", jreq),
            ("per 1,000 requests", f"{g1k} CO2e" if g1k != fmt.DASH else g1k),
            ("grid intensity", f"{cs.grid_g_per_kwh:.0f} gCO2e/kWh, {cs.intensity_label}"),
            ("PUE", f"{cs.pue:g} ({cs.pue_source})"),
        ]
        charts = [
            Chart("g/h", list(h.get("gph", key)), fmt.grams),
            Chart("W", list(h.get("w", key)), fmt.watts),
        ]
        return DetailSpec(f"Carbon of {c.comm or '?'} (pid {c.pid})", fields, charts)
