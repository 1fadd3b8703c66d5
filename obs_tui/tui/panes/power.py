"""Pane 1: power per process, and until a power source exists, the process table with CPU."""

from __future__ import annotations

from collections.abc import Hashable

from textual.markup import escape

from obs_tui.model import Frame, PowerSection, ProcessPower, ProcessSample
from obs_tui.tui import fmt
from obs_tui.tui.panes.base import Chart, DetailSpec, Pane, source_reason, tone_for
from obs_tui.tui.table import Column

SPARK = 10
LOCAL_SOURCES = ("rapl", "estimate")  # any other source is read-only mode's exporter family


class PowerPane(Pane):
    NUMBER = 1
    TITLE = "Power per process"
    COLUMNS = [
        Column("pid", "PID", 7, priority=9),
        Column("comm", "COMM", 10, align="left", flex=True, priority=9),
        Column("cpu", "CPU%", 6, priority=9),
        Column("w", "W", 6, priority=8),
        Column("rss", "RSS", 6, priority=6),
        Column("time", "TIME", 7, priority=4),
        Column("j", "J", 7, priority=3),
        Column("trend", "CPU% trend", SPARK, align="left", priority=5),
    ]
    DEFAULT_SORT = "cpu"

    DEFAULT_CSS = """
    PowerPane { }
    """

    def __init__(self, *, id: str | None = None) -> None:
        self._power: dict[int, ProcessPower] = {}
        self.SORTS = {
            "pid": (lambda p: p.pid, False),
            "comm": (lambda p: p.comm.lower(), False),
            # The order always matches the shown CPU%; equal values keep the order of total
            # CPU time, which moves slowly, so idle rows do not shuffle among themselves.
            "cpu": (lambda p: (round(p.cpu_percent, 1), p.cpu_seconds), True),
            "w": (lambda p: self._watts(p.pid), True),
            "rss": (lambda p: p.rss_bytes, True),
            "time": (lambda p: p.cpu_seconds, True),
            "j": (lambda p: self._joules(p.pid), True),
        }
        super().__init__(id=id)

    def _watts(self, pid: int) -> float:
        pp = self._power.get(pid)
        return pp.watts if pp else -1.0

    def _joules(self, pid: int) -> float:
        pp = self._power.get(pid)
        return pp.joules if pp else -1.0

    def items(self, frame: Frame) -> list[ProcessSample] | None:
        if frame.power is not None and not frame.processes and frame.power.processes:
            return self._remote_items(frame.power)
        if frame.power is not None:
            self._power = {p.pid: p for p in frame.power.processes}
            self.table.set_hidden(frozenset())
        else:
            self._power = {}
            self.table.set_hidden(frozenset({"w", "j"}))
        status = frame.source("procs")
        if status is not None and status.mode == "off":
            return None
        return list(frame.processes)

    def _remote_items(self, power: PowerSection) -> list[ProcessSample]:
        """Read-only mode: the processes are another host's, known only by their power; the
        columns this host's /proc would fill are hidden."""
        self._power = {p.pid: p for p in power.processes}
        self.table.set_hidden(frozenset({"cpu", "rss", "time", "j", "trend"}))
        if self.sort_col == "cpu":
            self.sort_col = "w"
            self._update_subtitle()
        return [ProcessSample(p.pid, p.comm, "", "", p.cpu_seconds, 0.0, 0) for p in power.processes]

    def key(self, item: ProcessSample) -> Hashable:
        return item.pid

    def text(self, item: ProcessSample) -> str:
        return f"{item.pid} {item.comm} {item.cmdline} {item.user}"

    def cells(self, p: ProcessSample) -> tuple:
        pp = self._power.get(p.pid)
        cpu = fmt.pct(p.cpu_percent)
        return (
            str(p.pid) if p.pid > 0 else fmt.DASH,  # read-only: containers, other hosts
            p.comm,
            (cpu, tone_for(p.cpu_percent, 50, 90)) if p.cpu_percent >= 50 else cpu,
            fmt.watts(pp.watts) if pp else fmt.DASH,
            fmt.size(p.rss_bytes),
            fmt.cpu_time(p.cpu_seconds, fine=False),
            fmt.joules(pp.joules) if pp else fmt.DASH,
            (self.spark("cpu", p.pid, SPARK, 5.0), "spark"),
        )

    def summary(self, frame: Frame, items: list | None) -> str:
        if items is None:
            mode, reason = source_reason(frame, "procs")
            return f"[$error]processes: {mode}[/] {escape(reason)}"
        text = f"{len(items)} processes"
        if frame.power is not None and frame.power.source not in LOCAL_SOURCES:  # read-only
            text += f" · host {fmt.watts(frame.power.host_watts)} ({frame.power.source} via Prometheus)"
        elif frame.power is not None:
            label = "RAPL" if frame.power.source == "rapl" else "estimate"
            text += (f" · host {fmt.watts(frame.power.host_watts)}"
                     f" (idle {fmt.watts(frame.power.idle_watts)}, {label})")
        else:
            text += " · [$text-muted]power off[/]"
        return text

    def notice(self, frame: Frame) -> tuple[str, bool]:
        procs = frame.source("procs")
        if procs is not None and procs.stale:
            return f"processes: stale — {escape(procs.reason)}", False
        if frame.power is None and getattr(self.app, "read_only", False):
            _, reason = source_reason(frame, "power")
            return (f"power: off — {escape(fmt.first_clause(reason) or 'no --prometheus URL')}; "
                    "read-only mode reads obs-tui's, Kepler's or Scaphandre's metrics", True)
        if frame.power is None:
            mode, reason = source_reason(frame, "power", "rapl")
            rapl = frame.capability("rapl")
            why = reason or (rapl.reason if rapl is not None and not rapl.ok else "")
            why = fmt.first_clause(why) or "no power source yet"
            return (f"power: off — {escape(why)}; the per-vCPU estimator is not built yet",
                    True)
        if frame.power.source not in LOCAL_SOURCES:
            return f"power: {escape(frame.power.reason)}", False
        if frame.power.source != "rapl":
            return "power: estimate — modelled from CPU time, not measured (no RAPL)", False
        return "", False

    def detail(self, key: Hashable) -> DetailSpec | None:
        frame = self.frame
        if frame is None:
            return None
        proc = next((p for p in frame.processes if p.pid == key), None)
        if proc is None:
            return None
        h = self.history
        fields = [
            ("PID", str(proc.pid)), ("command", proc.comm), ("user", proc.user or fmt.DASH),
            ("cmdline", proc.cmdline), ("CPU", fmt.pct(proc.cpu_percent) + " of one core"),
            ("CPU time", fmt.cpu_time(proc.cpu_seconds)), ("RSS", fmt.size(proc.rss_bytes)),
        ]
        charts = [Chart("CPU %", list(h.get("cpu", key)), fmt.pct),
                  Chart("RSS", list(h.get("rss", key)), fmt.size)]
        pp = self._power.get(proc.pid)
        if pp is not None:
            fields += [("power", fmt.watts(pp.watts)), ("energy", fmt.joules(pp.joules))]
            charts.append(Chart("W", list(h.get("w", key)), fmt.watts))
        else:
            fields.append(("power", "off (no power source)"))
        return DetailSpec(f"Process {proc.pid} {proc.comm}", fields, charts)
