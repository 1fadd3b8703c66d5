"""Pane 3: SLOs with their error budget and multi-window burn rates (Sloth/Pyrra maths).

One row per SLO: objective, period SLI, a bar of the budget left, burn rates over 5m/1h/6h/3d
(coloured against the alert factors), the firing alert of the highest severity, and the 1 h
burn over the last hours (Prometheus range query). The summary says how old the data is and
the last error; Enter shows every window, every alert and the PromQL.
"""

from __future__ import annotations

from collections.abc import Hashable

from obs_tui.model import Frame, SloStatus
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason, tone_for
from obs_tui.tui.table import Cell, Column

SPARK = 6
BAR = 4
# window -> (warn, error) burn-rate tones: the factors of the alerts that use it
TONES = {"5m": (6.0, 14.4), "1h": (6.0, 14.4), "6h": (1.0, 6.0), "3d": (1.0, 3.0)}


def objective(value: float | None) -> str:
    """0.999 -> 99.9%, 0.9995 -> 99.95%."""
    if value is None:
        return fmt.DASH
    text = f"{100.0 * value:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"


def burn_of(slo: SloStatus, window: str) -> float | None:
    return dict(slo.burn_rates).get(window)


def state_cell(slo: SloStatus) -> tuple[str, str]:
    """The row's alert state: the firing alert of the highest severity, else the data state."""
    firing = [a for a in slo.alerts if a.firing]
    if slo.state == "error":
        return "error", "error"
    if slo.state == "no_data":
        return "no data", "muted"
    page = next((a for a in firing if a.severity == "page"), None)
    if page is not None:
        return f"PAGE {page.long}", "error"
    if firing:
        return f"TICKET {firing[0].long}", "warn"
    return "ok", "ok"


def budget_cell(budget: float | None) -> tuple[str, str]:
    if budget is None:
        return fmt.DASH, "muted"
    tone = "error" if budget <= 0 else "warn" if budget < 0.25 else ""
    pct = f"{100 * budget:.0f}%"
    if budget <= 0:  # an empty bar says nothing: the whole cell for the overspend
        return (pct if len(pct) <= BAR + 5 else "<-999999%").rjust(BAR + 5), tone
    return f"{fmt.bar(budget, BAR)}{pct:>5}", tone


def unreachable(slo: SloStatus) -> list[str]:
    return [f"{a.severity} {a.factor:g}x" for a in slo.alerts if not a.reachable]


class SloPane(Pane):
    NUMBER = 3
    TITLE = "SLO burn rates"
    COLUMNS = [
        Column("name", "SLO", 10, align="left", flex=True, priority=9, ident=True),
        Column("obj", "OBJ", 6, priority=5, ident=True),
        Column("sli", "SLI", 7, priority=4),
        Column("budget", "BUDGET", 9, align="left", priority=9),
        Column("b5m", "5m", 5, priority=3),
        Column("b1h", "1h", 5, priority=8),
        Column("b6h", "6h", 5, priority=7),
        Column("b3d", "3d", 5, priority=4),
        Column("state", "ALERT", 9, align="left", priority=9),
        Column("trend", "TREND", SPARK, align="left", priority=6),
        Column("age", "AGE", 4, priority=2),
    ]
    SORTS = {
        "name": (lambda s: s.name.lower(), False),
        "obj": (lambda s: s.objective, True),
        "sli": (lambda s: s.sli if s.sli is not None else -1.0, False),
        "budget": (
            lambda s: s.error_budget_remaining if s.error_budget_remaining is not None else 9e9,
            False,
        ),
        "b5m": (lambda s: burn_of(s, "5m") or 0.0, True),
        "b1h": (lambda s: burn_of(s, "1h") or 0.0, True),
        "b6h": (lambda s: burn_of(s, "6h") or 0.0, True),
        "b3d": (lambda s: burn_of(s, "3d") or 0.0, True),
        "state": (lambda s: ("ok", "muted", "warn", "error").index(state_cell(s)[1]), True),
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
        return f"{item.name} {item.source} {item.state} {state_cell(item)[0]}"

    def cells(self, s: SloStatus) -> tuple:
        burns = dict(s.burn_rates)
        burn_cells = []
        for window in ("5m", "1h", "6h", "3d"):
            value = burns.get(window)
            burn_cells.append((fmt.burn(value), tone_for(value, *TONES[window])))
        flagged = unreachable(s)
        return (
            s.name,
            (objective(s.objective) + ("!" if flagged else ""), "warn" if flagged else ""),
            objective(s.sli),
            budget_cell(s.error_budget_remaining),
            *burn_cells,
            state_cell(s),
            (fmt.spark(s.burn_history, SPARK, 1.0), "spark"),
            # Only a row whose last refresh failed shows its age (its numbers are older than
            # the summary's "as of"): a ticking age on every row redrew them all every second.
            (fmt.duration(s.data_age_s), "warn") if s.last_error else "",
        )

    def summary(self, frame: Frame, items: list | None) -> str:
        if not frame.slo:
            status = frame.source("slo")
            if status is not None and status.stale:  # nothing could be discovered
                return (
                    f"[$text-muted]no SLOs[/] · [$error]Prometheus: "
                    f"{escape(fmt.short_reason(status.reason))}[/]"
                )
            found = status is not None and status.mode != "off"
            return f"[$text-muted]no SLOs {'found' if found else 'configured'}[/]"
        cells = [state_cell(s) for s in frame.slo]
        pages = sum(1 for text, _ in cells if text.startswith("PAGE"))
        tickets = sum(1 for text, _ in cells if text.startswith("TICKET"))
        nodata = sum(1 for s in frame.slo if s.state != "ok")
        text = f"{len(frame.slo)} SLOs"
        if pages:
            text += f" · [$error]{pages} paging[/]"
        if tickets:
            text += f" · [$warning]{tickets} ticket[/]"
        if not pages and not tickets and nodata < len(frame.slo):  # "none" needs data to say it
            text += " · none burning"
        if nodata:
            text += f" · [$text-muted]{nodata} without data[/]"
        ages = [s.data_age_s for s in frame.slo if s.data_age_s is not None]
        if ages:
            # the time of the oldest row's data, not its age: it changes once per refresh
            # round, not on every tick (the detail screen has the age)
            text += f" · data as of {fmt.clock(frame.taken_at - max(ages))}"
        return text

    def notice(self, frame: Frame) -> tuple[str, bool]:
        status = frame.source("slo")
        if not frame.slo:
            if status is not None and not status.stale and status.mode != "off":
                return (
                    "no SLOs found: add [[slo]] tables or slo_files to the config; none were "
                    "discovered (Autometrics objectives, Sloth rules)"
                ), True
            mode, reason = source_reason(frame, "slo", "prometheus")
            # "[[" is literal in Textual markup; escape() would leave a backslash showing.
            text = "add [[slo]] tables to the config and give --prometheus URL"
            if status is not None and status.stale:
                text = (
                    "none configured, and none can be discovered (Autometrics, Sloth rules) "
                    "while Prometheus fails"
                )
                if status.stale_since:
                    text += f" (since {fmt.clock(status.stale_since)})"
            if reason:
                text += f"\nprometheus: {escape(fmt.first_clause(reason))}"
            return text, True
        errors = [s.last_error for s in frame.slo if s.last_error]
        if status is not None and status.stale:
            had_data = any(s.data_age_s is not None for s in frame.slo)
            shown = "showing the last data" if had_data else "no data yet"
            since = f" since {fmt.clock(status.stale_since)}" if status.stale_since else ""
            return f"Prometheus: {escape(fmt.first_clause(status.reason))}{since} — {shown}", False
        if errors:
            return f"{len(errors)} SLO queries failed: {escape(errors[0])}", False
        broken = [s for s in frame.slo if s.state == "error"]
        if broken:
            return f"{escape(broken[0].name)}: {escape(broken[0].reason)}", False
        flagged = [s.name for s in frame.slo if unreachable(s)]
        if flagged:
            return (
                f"[$text-muted]! {escape(', '.join(flagged[:2]))}: a page alert can never fire "
                "(factor × error budget > 1)[/]"
            ), False
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame, h = self.frame, self.history
        s = next((x for x in frame.slo if x.name == key), None) if frame else None
        if s is None or h is None:
            return None
        tte = s.time_to_exhaustion_s
        fields = [
            ("SLO", s.name),
            ("source", s.source),
            ("objective", objective(s.objective)),
            ("period", s.period),
            ("SLI", objective(s.sli)),
            ("budget left", fmt.ratio_pct(s.error_budget_remaining, 1)),
            ("exhausted in", "not burning" if tte is None and s.state == "ok" else fmt.duration(tte)),
            ("state", s.state + (f" ({s.reason})" if s.reason else "")),
            ("data age", fmt.duration(s.data_age_s)),
            ("last error", s.last_error or "none"),
        ]
        if s.description:
            fields.insert(2, ("description", s.description))
        charts = [
            Chart("burn rate 1h, last 6 h (range query)", list(s.burn_history), fmt.burn),
            Chart("error budget left % (this session)", list(h.get("budget", key)), fmt.pct),
        ]
        columns = [
            Column("kind", "WINDOW / ALERT", 16, align="left", flex=True, priority=9, ident=True),
            Column("ratio", "ERRORS", 8, priority=8),
            Column("value", "BURN", 7, priority=9),
            Column("state", "STATE", 11, align="left", priority=9),
        ]
        ratios = dict(s.error_ratios)
        rows: list[tuple[Hashable, tuple[Cell, ...]]] = [
            (
                ("w", w),
                (f"window {w}", fmt.ratio_pct(ratios.get(w), 3), (fmt.burn(v), tone_for(v, 1.0, 6.0)), ""),
            )
            for w, v in s.burn_rates
        ]
        if s.period in ratios:
            rows.append((("w", s.period), (f"period {s.period}", fmt.ratio_pct(ratios[s.period], 3), "", "")))
        for i, a in enumerate(s.alerts):
            if a.firing:
                state = ("FIRING", "error" if a.severity == "page" else "warn")
            elif a.firing is None:
                state = ("unknown", "muted")
            else:
                state = ("unreachable", "muted") if not a.reachable else ("quiet", "ok")
            rows.append(
                (
                    ("a", i),
                    (
                        f"{a.severity} {a.long}+{a.short} > {a.factor:g}x",
                        fmt.ratio_pct(a.threshold, 3),
                        "",
                        state,
                    ),
                )
            )
        return DetailSpec(
            f"SLO {s.name}",
            fields,
            charts,
            table_title="Windows and alerts",
            columns=columns,
            rows=rows,
            note=(
                f"PromQL, one request for every window ({len(s.promql)} characters; "
                f"all of it in snapshot --json):\n{s.promql}"
            )
            if s.promql
            else "",
        )
