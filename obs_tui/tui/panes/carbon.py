"""Pane 4: carbon (gCO2e) per process from power, grid intensity and PUE."""

from __future__ import annotations

from collections.abc import Hashable

from textual.markup import escape

from obs_tui.model import Frame, ProcessCarbon
from obs_tui.tui import fmt
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane
from obs_tui.tui.table import Column

SPARK = 10


class CarbonPane(Pane):
    NUMBER = 4
    TITLE = "Carbon"
    COLUMNS = [
        Column("comm", "COMM", 10, align="left", flex=True, priority=9),
        Column("pid", "PID", 7, priority=6),
        Column("gph", "g/h", 7, priority=9),
        Column("jreq", "J/req", 7, priority=5),
        Column("g1k", "g/1k req", 8, priority=7),
        Column("trend", "g/h trend", SPARK, align="left", priority=4),
    ]
    DEFAULT_SORT = "gph"

    DEFAULT_CSS = """
    CarbonPane { }
    """

    def __init__(self, *, id: str | None = None) -> None:
        self._comm: dict[int, str] = {}
        self.SORTS = {
            "comm": (lambda c: self._comm.get(c.pid, "").lower(), False),
            "pid": (lambda c: c.pid, False),
            "gph": (lambda c: c.g_per_h, True),
            "jreq": (lambda c: c.joules_per_request if c.joules_per_request is not None
                     else -1.0, True),
            "g1k": (lambda c: c.g_per_1k_requests if c.g_per_1k_requests is not None
                    else -1.0, True),
        }
        super().__init__(id=id)

    def items(self, frame: Frame) -> list[ProcessCarbon] | None:
        if frame.carbon is None:
            return None
        self._comm = {p.pid: p.comm for p in frame.processes}
        if frame.power is not None:
            for pp in frame.power.processes:
                self._comm.setdefault(pp.pid, pp.comm)
        return list(frame.carbon.processes)

    def key(self, item: ProcessCarbon) -> Hashable:
        return item.pid

    def text(self, item: ProcessCarbon) -> str:
        return f"{item.pid} {self._comm.get(item.pid, '')}"

    def cells(self, c: ProcessCarbon) -> tuple:
        return (
            self._comm.get(c.pid, "?"),
            str(c.pid),
            fmt.grams(c.g_per_h),
            fmt.joules(c.joules_per_request) if c.joules_per_request is not None
            else (fmt.DASH, "muted"),
            fmt.grams(c.g_per_1k_requests) if c.g_per_1k_requests is not None
            else (fmt.DASH, "muted"),
            (self.spark("gph", c.pid, SPARK, 0.01), "spark"),
        )

    def summary(self, frame: Frame, items: list | None) -> str:
        c = frame.carbon
        if c is None:
            return "[$text-muted]off — needs the power pane's source[/]"
        return (f"host {fmt.grams(c.host_g_per_h)}/h · grid {c.grid_g_per_kwh:.0f} g/kWh"
                f" · PUE {c.pue:.2f}")

    def notice(self, frame: Frame) -> tuple[str, bool]:
        if frame.carbon is None:
            if frame.power is None:
                return ("gCO2e = energy × grid intensity × PUE: shown once pane 1 has power "
                        "(RAPL or the estimator); intensity and PUE come from "
                        + escape("[carbon]") + " in the config"), True
            return "carbon: off — no carbon section in this frame", True
        if frame.power is not None and frame.power.source != "rapl":
            return "carbon: from estimated power (no RAPL)", False
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame = self.frame
        if frame is None or frame.carbon is None:
            return None
        c = next((x for x in frame.carbon.processes if x.pid == key), None)
        if c is None:
            return None
        fields = [
            ("process", self._comm.get(c.pid, "?")), ("PID", str(c.pid)),
            ("emissions", f"{fmt.grams(c.g_per_h)} per hour"),
            ("energy per request", fmt.joules(c.joules_per_request)),
            ("per 1k requests", fmt.grams(c.g_per_1k_requests)),
            ("grid intensity", f"{frame.carbon.grid_g_per_kwh:.0f} gCO2e/kWh"),
            ("PUE", f"{frame.carbon.pue:.2f}"),
        ]
        charts = [Chart("g/h", list(self.history.get("gph", key)), fmt.grams),
                  Chart("W", list(self.history.get("w", key)), fmt.watts)]
        return DetailSpec(f"Carbon of {self._comm.get(c.pid, '?')} (pid {c.pid})", fields, charts)
