"""Pane 1: power per process. Host watts with its source and zones, a host-watts trend, and
every process with its watts now, share of the host and joules since start, beside CPU and
memory. The Idle row (what no process took) is pinned first: it is never sorted or filtered
away. Without a power section the pane is the process table with CPU."""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult

from obs_tui.model import Frame, PowerSection, ProcessRow
from obs_tui.text import printable
from obs_tui.tui import fmt
from obs_tui.tui.fmt import escape
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason, tone_for
from obs_tui.tui.table import Cell, Column, KeyedTable
from obs_tui.tui.widgets import TextBlock, TextLine

SPARK = 10
HOST_SPARK = 20
IDLE = "idle"  # the Idle row's key (ProcessRow.key; process rows are keyed by pid)


def _watts(row: ProcessRow) -> float:
    return row.power.watts if row.power else -1.0


def _cpu_percent(row: ProcessRow) -> float:
    return row.sample.cpu_percent if row.sample else 0.0


LOCAL_SOURCES = ("rapl", "estimate")  # any other source is read-only mode's exporter family


def source_badge(power: PowerSection) -> str:
    if power.source not in LOCAL_SOURCES:
        return f"{power.source} via Prometheus"
    return "RAPL" if power.source == "rapl" else "estimate"


class PowerPane(Pane):
    NUMBER = 1
    TITLE = "Power per process"
    COLUMNS = [
        Column("pid", "PID", 7, priority=9, ident=True),
        Column("comm", "COMM", 10, align="left", flex=True, priority=9, ident=True),
        Column("w", "W", 7, priority=9),
        Column("d_w", "ΔW", 7, priority=7),
        Column("share", "SHARE", 6, priority=7),
        Column("j", "J", 7, priority=6),
        Column("cpu", "CPU%", 6, priority=8),
        Column("rss", "RSS", 6, priority=4),
        Column("time", "TIME", 7, priority=3),
        Column("trend", "trend", SPARK, align="left", priority=5),
    ]
    DEFAULT_SORT = "w"
    FILTER_HINT = "name, pid, command line or user"
    CHANGES = {"d_w": 3}

    DEFAULT_CSS = """
    PowerPane > .host { color: $foreground; padding: 0 1; }
    PowerPane.-nopower > .host { display: none; }
    PowerPane.-compact > .host { display: none; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        self.SORTS = {
            "pid": (lambda r: r.pid, False),
            "comm": (lambda r: r.comm.lower(), False),
            # Without power every W is equal: CPU then orders the table, as it always did.
            "w": (lambda r: (round(_watts(r), 2), round(_cpu_percent(r), 1)), True),
            "share": (lambda r: r.power.share if r.power else -1.0, True),
            "j": (lambda r: r.power.joules if r.power else -1.0, True),
            # The order always matches the shown CPU%; equal values keep the order of total
            # CPU time, which moves slowly, so idle rows do not shuffle among themselves.
            "cpu": (lambda r: (round(_cpu_percent(r), 1), r.sample.cpu_seconds if r.sample else 0.0), True),
            "rss": (lambda r: r.sample.rss_bytes if r.sample else -1, True),
            "time": (lambda r: r.sample.cpu_seconds if r.sample else -1.0, True),
        }
        super().__init__(id=id)
        self._badge = ""

    def compose(self) -> ComposeResult:
        yield TextLine("starting…", classes="summary")
        yield TextLine("", classes="host")  # the host-watts trend and the zones
        yield TextBlock(classes="notice")
        yield KeyedTable(self.COLUMNS)

    # ---- rows -------------------------------------------------------------------------------

    def adapt(self, frame: Frame) -> None:
        power = frame.power
        self.set_class(power is None, "-nopower")
        if power is None:
            self.hide(frozenset({"w", "d_w", "share", "j"}))
        elif power.source not in LOCAL_SOURCES and not frame.processes:
            # Read-only mode: another host's processes, known by their power only.
            self.hide(frozenset({"j", "cpu", "rss", "time"}))
        else:
            self.hide(frozenset())
        self._set_badge(source_badge(power) if power is not None else "")

    def items(self, frame: Frame) -> list[ProcessRow] | None:
        status = frame.source("procs")
        if (status is None or status.mode == "off") and frame.power is None:
            return None
        return list(frame.process_rows)

    def pinned_items(self, frame: Frame) -> list[ProcessRow]:
        return [frame.idle_row] if frame.idle_row is not None else []

    def key(self, item: ProcessRow) -> Hashable:
        return item.key

    def text(self, item: ProcessRow) -> str:
        p = item.sample
        return f"{item.key} {item.comm} {p.cmdline} {p.user}" if p else f"{item.key} {item.comm}"

    def cells(self, r: ProcessRow) -> tuple:
        p, pp = r.sample, r.power
        if r.idle and pp is not None:
            return (
                "",
                ("Idle", "strong"),
                fmt.watts(pp.watts),
                "",
                fmt.ratio_pct(pp.share),
                fmt.joules(pp.joules),
                ("", "muted"),
                "",
                "",
                (self.spark("idle_w", None, SPARK, 1.0), "spark"),
            )
        shown = fmt.pct(p.cpu_percent) if p else fmt.DASH
        cpu: Cell = (shown, tone_for(p.cpu_percent, 50, 90)) if p and p.cpu_percent >= 50 else shown
        remote = (
            pp is not None
            and p is None
            and self.frame is not None
            and self.frame.power is not None
            and self.frame.power.source not in LOCAL_SOURCES
        )
        return (
            str(r.key) if not isinstance(r.key, int) or r.key > 0 else fmt.DASH,  # read-only: no pid
            r.comm if p or remote else (r.comm, "muted"),
            fmt.watts(pp.watts) if pp else fmt.DASH,
            self.change_cell(r, "d_w"),
            fmt.ratio_pct(pp.share) if pp else fmt.DASH,
            fmt.joules(pp.joules) if pp else fmt.DASH,
            cpu,
            fmt.size(p.rss_bytes) if p else fmt.DASH,
            fmt.cpu_time(p.cpu_seconds, fine=False) if p else fmt.DASH,
            (self.spark("w" if pp else "cpu", r.key, SPARK, 1.0 if pp else 5.0), "spark"),
        )

    # ---- the lines above the table ------------------------------------------------------------

    def _set_badge(self, badge: str) -> None:
        if badge != self._badge:
            self._badge = badge
            self.border_title = printable(f"{self.NUMBER} {self.TITLE}" + (f" · {badge}" if badge else ""))

    def summary(self, frame: Frame, items: list | None) -> str:
        power = frame.power
        if items is None:
            mode, reason = source_reason(frame, "procs")
            return f"[$error]processes: {mode}[/] {escape(reason)}"
        text = f"{len(frame.processes)} processes"
        if power is None:
            return text + " · [$text-muted]power off[/]"
        if power.source not in LOCAL_SOURCES:  # read-only mode
            return (
                f"host [b]{fmt.watts(power.host_watts)}[/] [$accent]{escape(source_badge(power))}[/]"
                f" · {len(power.processes)} processes"
            )
        badge = source_badge(power)
        tone = "$success" if power.source == "rapl" else "$warning"
        return (
            f"host [b]{fmt.watts(power.host_watts)}[/] [{tone}]{badge}[/]"
            f" · idle {fmt.watts(power.idle_watts)} · busy {fmt.ratio_pct(power.busy_ratio, 0)}"
            f" · {text}"
        )

    def host_line(self, frame: Frame) -> str:
        power = frame.power
        if power is None:
            return ""
        recent = [v for v in self.history.get("host_w")][-HOST_SPARK:] if self.history else []
        # From 80 % of the lowest: a host never nears 0 W, and its swings are what matter.
        low = 0.8 * min((v for v in recent if v), default=0.0)
        trend = fmt.spark(recent, HOST_SPARK, 1.0, low)
        parts = " ".join(f"{escape(name)} {fmt.watts(w)}" for name, w in power.zones)
        inside = " ".join(f"{escape(name)} {fmt.watts(w)}" for name, w in power.subzones)
        line = f"W [$accent]{trend}[/] {parts}"
        if inside:
            line += f" [$text-muted]│ within: {inside}[/]"
        return line

    def show(self, frame: Frame, history) -> None:
        super().show(frame, history)
        if not self.is_compact:
            self.query_one(".host", TextLine).set(self.host_line(frame))

    def notice(self, frame: Frame) -> tuple[str, bool]:
        procs = frame.source("procs")
        if procs is not None and procs.stale:
            return f"processes: stale — {escape(procs.reason)}", False
        power = frame.power
        if power is None:
            mode, reason = source_reason(frame, "power", "rapl")
            rapl = frame.capability("rapl")
            why = reason or (rapl.reason if rapl is not None and not rapl.ok else "")
            why = fmt.first_clause(why) or "no power source"
            return f"power: {mode} — {escape(why)}", True
        status = frame.source("power")
        if status is not None and status.stale:
            return f"power: stale — {escape(status.reason)}", False
        if power.source not in LOCAL_SOURCES:
            return escape(power.reason), False
        if power.source != "rapl":
            est = power.estimate
            what = f", {escape(est.microarchitecture)}" if est is not None else ""
            cpu = "" if power.cpu_time_source == "ebpf" else "; CPU time from /proc (no eBPF)"
            return f"estimated, not measured (no RAPL): CCF per-vCPU model{what}{cpu}", False
        return escape(power.reason), False  # e.g. CPU time from /proc, and why not eBPF

    # ---- Enter ------------------------------------------------------------------------------

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame, h = self.frame, self.history
        if frame is None or h is None:
            return None
        if key == IDLE:
            return self.host_detail(frame)
        row = next((r for r in frame.process_rows if r.pid == key), None)
        if row is None:
            return None
        proc, pp, comm = row.sample, row.power, row.comm
        fields = [("PID", str(key)), ("command", comm)]
        charts = []
        if pp is not None and frame.power is not None:
            fields += [
                ("power", f"{fmt.watts(pp.watts)} ({fmt.ratio_pct(pp.share)} of the host)"),
                ("energy", f"{fmt.joules(pp.joules)} since start"),
                ("on-CPU", f"{fmt.cpu_time(pp.cpu_seconds)} since start"),
                (
                    "source",
                    f"{source_badge(frame.power)}, CPU time from "
                    f"{'eBPF' if frame.power.cpu_time_source == 'ebpf' else '/proc'}",
                ),
            ]
            charts.append(Chart("W", list(h.get("w", key)), fmt.watts))
        elif frame.power is None:
            fields.append(("power", "off (no power source)"))
        if proc is not None:
            fields += [
                ("user", proc.user or fmt.DASH),
                ("cmdline", proc.cmdline),
                ("CPU", fmt.pct(proc.cpu_percent) + " of one core"),
                ("CPU time", fmt.cpu_time(proc.cpu_seconds)),
                ("RSS", fmt.size(proc.rss_bytes)),
            ]
            charts += [
                Chart("CPU %", list(h.get("cpu", key)), fmt.pct),
                Chart("RSS", list(h.get("rss", key)), fmt.size),
            ]
        else:
            fields.append(("state", "exited"))
        return DetailSpec(f"Process {key} {comm}", fields, charts)

    def host_detail(self, frame: Frame) -> DetailSpec | None:
        power, h = frame.power, self.history
        if power is None or h is None:
            return None
        fields = [
            ("source", source_badge(power)),
            ("host", fmt.watts(power.host_watts)),
            ("idle", f"{fmt.watts(power.idle_watts)} (what no process took)"),
            ("busy", f"{fmt.ratio_pct(power.busy_ratio)} of CPU time"),
            ("host energy", f"{fmt.joules(power.host_joules)} since start"),
            ("idle energy", f"{fmt.joules(power.idle_joules)} since start"),
        ]
        fields += [(f"zone {name}", fmt.watts(w)) for name, w in power.zones]
        fields += [(f"  within {name}", fmt.watts(w)) for name, w in power.subzones]
        est = power.estimate
        if est is not None:
            fields += [
                ("CPU", f"{est.cpu_model}, {est.vcpus} vCPUs"),
                (
                    "per vCPU",
                    f"{est.min_watts_per_vcpu}–{est.max_watts_per_vcpu} W ({est.microarchitecture})",
                ),
                (
                    "chosen from",
                    {
                        "table": "CCF's table, by CPU model",
                        "average": "CCF's average (CPU not in the table)",
                        "config": "the config",
                    }[est.coefficients_from],
                ),
                ("memory", f"{est.memory_gb:.1f} GB × {est.memory_watts_per_gb} W/GB"),
            ]
        fields.append(("CPU time", "eBPF sched_switch" if power.cpu_time_source == "ebpf" else "/proc"))
        note = power.reason
        if est is not None:
            note += (
                "\nwatts = vCPUs × (min + busy × (max − min)) + memory GB × W/GB"
                f"\ncoefficients: {est.source_url}"
            )
        charts = [
            Chart("host W", list(h.get("host_w")), fmt.watts),
            Chart("idle W", list(h.get("idle_w")), fmt.watts),
        ]
        return DetailSpec(f"Host power ({source_badge(power)})", fields, charts, note=note.strip())
