"""Pane 3: SLOs with their error budget and multi-window burn rates (Sloth/Pyrra maths)."""

from __future__ import annotations

from collections.abc import Hashable

from textual.markup import escape

from obs_tui.model import Frame, SloStatus
from obs_tui.tui import fmt
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason, tone_for
from obs_tui.tui.table import Column

SPARK = 8


def objective(value: float | None) -> str:
    """0.999 -> 99.9%, 0.9995 -> 99.95%."""
    if value is None:
        return fmt.DASH
    text = f"{100.0 * value:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"


def burn_of(slo: SloStatus, window: str) -> float | None:
    return dict(slo.burn_rates).get(window)


def state_cell(slo: SloStatus) -> tuple[str, str]:
    firing = [a for a in slo.alerts if a.firing]
    if slo.state == "error":
        return "error", "error"
    if slo.state == "no_data":
        return "no data", "muted"
    if any(a.severity == "page" for a in firing):
        return "PAGE", "error"
    if firing:
        return "TICKET", "warn"
    return "ok", "ok"


class SloPane(Pane):
    NUMBER = 3
    TITLE = "SLO burn rates"
    COLUMNS = [
        Column("name", "SLO", 12, align="left", flex=True, priority=9),
        Column("obj", "OBJ", 7, priority=4),
        Column("sli", "SLI", 8, priority=6),
        Column("budget", "BUDGET", 7, priority=9),
        Column("b1h", "1h", 6, priority=8),
        Column("b6h", "6h", 6, priority=7),
        Column("state", "STATE", 7, align="left", priority=9),
        Column("trend", "budget", SPARK, align="left", priority=3),
    ]
    SORTS = {
        "name": (lambda s: s.name.lower(), False),
        "obj": (lambda s: s.objective, True),
        "sli": (lambda s: s.sli if s.sli is not None else -1.0, False),
        "budget": (lambda s: s.error_budget_remaining
                   if s.error_budget_remaining is not None else 9e9, False),
        "b1h": (lambda s: burn_of(s, "1h") or 0.0, True),
        "b6h": (lambda s: burn_of(s, "6h") or 0.0, True),
        "state": (lambda s: state_cell(s)[1] in ("error", "warn"), True),
    }
    DEFAULT_SORT = "b1h"

    DEFAULT_CSS = """
    SloPane { }
    """

    def items(self, frame: Frame) -> list[SloStatus] | None:
        return list(frame.slo) if frame.slo else None

    def key(self, item: SloStatus) -> Hashable:
        return item.name

    def text(self, item: SloStatus) -> str:
        return f"{item.name} {item.source} {item.state}"

    def cells(self, s: SloStatus) -> tuple:
        budget = s.error_budget_remaining
        b1h, b6h = burn_of(s, "1h"), burn_of(s, "6h")
        budget_tone = "muted" if budget is None else (
            "error" if budget <= 0 else "warn" if budget < 0.25 else "")
        return (
            s.name,
            objective(s.objective),
            objective(s.sli),
            (fmt.ratio_pct(budget, 0), budget_tone),
            (fmt.burn(b1h), tone_for(b1h, 6.0, 14.4)),
            (fmt.burn(b6h), tone_for(b6h, 1.0, 6.0)),
            state_cell(s),
            (self.spark("budget", s.name, SPARK, 100.0), "spark"),
        )

    def summary(self, frame: Frame, items: list | None) -> str:
        if not frame.slo:
            return "[$text-muted]no SLOs configured[/]"
        firing = sum(1 for s in frame.slo if any(a.firing for a in s.alerts))
        nodata = sum(1 for s in frame.slo if s.state != "ok")
        text = f"{len(frame.slo)} SLOs"
        text += f" · [$error]{firing} burning[/]" if firing else " · none burning"
        if nodata:
            text += f" · [$text-muted]{nodata} without data[/]"
        return text

    def notice(self, frame: Frame) -> tuple[str, bool]:
        if not frame.slo:
            mode, reason = source_reason(frame, "slo", "prometheus")
            # "[[" is literal in Textual markup; escape() would leave a backslash showing.
            text = "add [[slo]] tables to the config and give --prometheus URL"
            if reason:
                text += f"\nprometheus: {escape(fmt.first_clause(reason))}"
            return text, True
        status = frame.source("slo") or frame.source("prometheus")
        if status is not None and status.stale:
            return f"SLO: stale — {escape(status.reason)}", False
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame = self.frame
        s = next((x for x in frame.slo if x.name == key), None) if frame else None
        if s is None:
            return None
        h = self.history
        fields = [
            ("SLO", s.name), ("source", s.source), ("objective", objective(s.objective)),
            ("period", s.period), ("SLI", objective(s.sli)),
            ("budget left", fmt.ratio_pct(s.error_budget_remaining, 1)),
            ("state", s.state + (f" ({s.reason})" if s.reason else "")),
        ]
        charts = [Chart("error budget left %", list(h.get("budget", key)), fmt.pct),
                  Chart("burn rate 1h", list(h.get("burn1h", key)), fmt.burn),
                  Chart("burn rate 6h", list(h.get("burn6h", key)), fmt.burn)]
        columns = [Column("kind", "WINDOW / ALERT", 14, align="left", flex=True, priority=9),
                   Column("value", "BURN", 8, priority=9),
                   Column("state", "STATE", 10, align="left", priority=9)]
        rows = [(("w", w), (f"burn {w}", (fmt.burn(v), tone_for(v, 1.0, 6.0)), ""))
                for w, v in s.burn_rates]
        rows += [(("a", i), (f"{a.severity}: {a.long}+{a.short} > {a.factor:g}x", "",
                             ("FIRING", "error") if a.firing else ("quiet", "ok")))
                 for i, a in enumerate(s.alerts)]
        return DetailSpec(f"SLO {s.name}", fields, charts, table_title="Burn rates and alerts",
                          columns=columns, rows=rows)
