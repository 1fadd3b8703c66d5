"""On-CPU time per process: eBPF on sched:sched_switch, or /proc when eBPF is off.

Both readers return cumulative nanoseconds per tgid and a name for each. The eBPF one counts
every slice a process ran, so a process that lived between two ticks still shows up; the
/proc one only sees processes alive at the sweep.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from obs_tui.bcc_setup import probe_source
from obs_tui.model import Capability
from obs_tui.sources.bpf_maps import MapReader
from obs_tui.sources.procs import ProcsSource
from obs_tui.text import printable

BPF_SOURCE = probe_source("cputime.c")
PRUNE_EVERY_S = 10.0
DEAD_GRACE_S = 5.0  # an exited tgid is kept this long so its last slices are reported


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return printable(f.read().strip().decode(errors="replace"))
    except OSError:
        return None


def _tgid_of(tid: int) -> int | None:
    try:
        with open(f"/proc/{tid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class EbpfCpuTime:
    kind = "ebpf"

    def __init__(self, bpf_source: Path = BPF_SOURCE, notice=lambda line: None) -> None:
        self.bpf_source = Path(bpf_source)
        self.notice = notice
        self._bpf: Any = None  # bcc.BPF once loaded (bcc has no type information)
        self._reader: MapReader | None = None
        self._comms: dict[int, str] = {}
        self._dead_since: dict[int, float] = {}
        self._last_prune = time.monotonic()

    def open(self) -> Capability:
        from obs_tui.bcc_setup import load_program

        self._bpf, cap = load_program(self.bpf_source, notice=self.notice)
        return cap

    def read(self) -> tuple[dict[int, int], dict[int, str]]:
        """(tgid -> on-CPU ns, tgid -> comm). Counts the running slice of each CPU's current
        task too: kernel total + running slice only grows, and the kernel adds the whole slice
        at the switch, so successive reads are consistent cumulative counters."""
        now = time.monotonic_ns()  # CLOCK_MONOTONIC, as bpf_ktime_get_ns
        if self._reader is None:
            self._reader = MapReader(self._bpf[b"cputime"])
        decode = self._reader.table.Leaf.from_buffer_copy
        totals, kernel_comms, exited = {}, {}, []
        for key, value in self._reader.raw():
            tgid, v = int.from_bytes(key, "little"), decode(value)
            totals[tgid] = v.ns
            kernel_comms[tgid] = v.comm
            if v.exited:
                exited.append(tgid)
        for slot in self._bpf[b"since"][0]:  # one per CPU
            if slot.tid and slot.ns and now > slot.ns:
                running = _tgid_of(slot.tid)
                if running:
                    totals[running] = totals.get(running, 0) + (now - slot.ns)
        comms = {}
        for tgid in totals:
            name = self._comms.get(tgid)
            if name is None:
                name = _comm(tgid)
                if name is not None:
                    self._comms[tgid] = name
            if name is None:  # exited before we looked: the name its first thread had
                raw = kernel_comms.get(tgid, b"")
                name = printable(bytes(raw).split(b"\0", 1)[0].decode(errors="replace")) or "?"
            comms[tgid] = name
        if exited:  # reported now, with its last slices: forget it in kernel and here
            self._forget(self._reader.table, exited)
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self._prune(totals)
        return totals, comms

    def _forget(self, table, tgids: list[int]) -> None:
        keys = (table.Key * len(tgids))(*tgids)
        try:
            table.items_delete_batch(keys)
        except Exception:  # no batch ops before Linux 5.6
            for key in keys:
                try:
                    del table[key]
                except KeyError:
                    pass
        for tgid in tgids:
            self._comms.pop(tgid, None)

    def _prune(self, totals: dict[int, int]) -> None:
        """The backstop for exits the probe did not mark (a main thread that left before the
        others; a last slice landing after the entry was deleted): forget tgids gone from
        /proc, a grace period after they were first seen dead."""
        now = time.monotonic()
        self._last_prune = now
        dead = []
        for tgid in totals:
            if os.path.exists(f"/proc/{tgid}"):
                self._dead_since.pop(tgid, None)
            elif now - self._dead_since.setdefault(tgid, now) >= DEAD_GRACE_S:
                dead.append(tgid)
                del self._dead_since[tgid]
        if dead:
            self._forget(self._bpf[b"cputime"], dead)

    def close(self) -> None:
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
            self._reader = None


class ProcCpuTime:
    """utime+stime of every live process, through the procs source's sweep of /proc/PID/stat."""

    kind = "proc"

    def __init__(self, proc_root: str = "/proc") -> None:
        self._procs = ProcsSource(proc_root)

    def open(self) -> Capability:
        return self._procs.available()

    def read(self) -> tuple[dict[int, int], dict[int, str]]:
        sample = self._procs.sample(time.time())
        return (
            {pid: round(raw.cpu_seconds * 1e9) for pid, raw in sample.items()},
            {pid: raw.info.comm for pid, raw in sample.items()},
        )

    def close(self) -> None:
        self._procs.close()
