"""Processes: pid, comm, cmdline, user, CPU seconds and RSS.

psutil gives the static fields (name, cmdline, user), read once per process and cached;
the fields that change every tick (CPU ticks, RSS) come from one read of /proc/PID/stat,
which costs less than psutil's per-process path (bench/ui_cost.py measures it). The stat
file of each process stays open between ticks and is re-read with pread: procfs makes the
text afresh on every read from offset 0, and skipping open and close is a large part of the
sweep. A kept file belongs to the process it was opened
for: once that process is gone it reads ESRCH, even if a new process took its pid.
"""

from __future__ import annotations

import errno
import os
import re
import resource
from dataclasses import dataclass

import psutil

from obs_tui.model import Capability
from obs_tui.text import printable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PF_KTHREAD = 0x00200000  # include/linux/sched.h: a kernel thread
# A container runtime's id in a cgroup path: docker-<id>.scope, /docker/<id>,
# cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope (64 hex digits, as Kepler reads it)
CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")


def _keep_limit() -> int:
    """How many stat files to keep open: at most a quarter of the soft file limit and 512, so
    every descriptor of the process stays below 1024 (select() cannot watch one above) and
    sockets and BPF maps always find one. Processes past the limit are opened per read."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, min(512, soft // 4)) if soft != resource.RLIM_INFINITY else 512


@dataclass(frozen=True)
class ProcInfo:
    """What does not change while a process lives (a pid reused gets a new start time)."""

    start_ticks: int
    comm: str
    cmdline: str
    user: str
    exe: str = ""
    container_id: str = ""
    kernel_thread: bool = False


@dataclass(frozen=True)
class ProcRaw:
    info: ProcInfo
    cpu_seconds: float
    rss_bytes: int


def stat_flags(data: bytes) -> int:
    """The flags word (field 9) of a /proc/PID/stat line."""
    return int(data[data.rindex(b")") + 2 :].split()[6])


def container_id(cgroup: str) -> str:
    """The container a process runs in, from its /proc/PID/cgroup text; "" when none."""
    found = CONTAINER_ID.findall(cgroup)
    return found[-1] if found else ""


def parse_stat(data: bytes) -> tuple[str, int, int, int]:
    """(comm, utime+stime ticks, start ticks, rss pages) from a /proc/PID/stat line."""
    open_paren, close_paren = data.index(b"("), data.rindex(b")")
    comm = printable(data[open_paren + 1 : close_paren].decode(errors="replace"))
    fields = data[close_paren + 2 :].split()
    # fields[0] is field 3 (state): utime=14, stime=15, starttime=22, rss=24 in proc(5)
    return comm, int(fields[11]) + int(fields[12]), int(fields[19]), int(fields[21])


class ProcsSource:
    name = "procs"
    mode = "live"

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self._info: dict[int, ProcInfo] = {}
        self._last: dict[int, tuple[bytes, ProcRaw]] = {}  # pid -> (stat line, its sample)
        self._fds: dict[int, int] = {}  # pid -> its stat file, kept open
        self._keep = _keep_limit()

    def available(self) -> Capability:
        if os.path.isdir(os.path.join(self.proc_root, "self")):
            # One sweep now, while the engine is still root: a process's executable is its
            # owner's to read, and what is read here is kept for the process's life.
            self.sample(0.0)
            return Capability(True)
        return Capability(False, f"{self.proc_root} is not mounted")

    def _static(self, pid: int, start: int, comm: str, data: bytes) -> ProcInfo:
        info = self._info.get(pid)
        if info is not None and info.start_ticks == start:
            return info
        exe = cid = ""
        kernel = bool(stat_flags(data) & PF_KTHREAD)
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                cmdline = " ".join(proc.cmdline())
                user = proc.username()
            if not kernel:
                exe, cid = self._identity(pid, proc)
        except (psutil.Error, KeyError):
            # KeyError: a uid with no passwd entry; show the number like ps does
            cmdline, user = "", ""
            try:
                user = str(psutil.Process(pid).uids().real)
            except psutil.Error:
                pass
        info = ProcInfo(
            start, comm, printable(cmdline) or f"[{comm}]", printable(user), printable(exe), cid, kernel
        )
        self._info[pid] = info
        return info

    def _identity(self, pid: int, proc: psutil.Process) -> tuple[str, str]:
        """(executable path, container id): "" for what cannot be read."""
        try:
            exe = proc.exe()
        except psutil.Error:
            exe = ""
        try:
            with open(os.path.join(self.proc_root, str(pid), "cgroup")) as f:
                cid = container_id(f.read())
        except OSError:
            cid = ""
        return exe, cid

    def _read_stat(self, proc_fd: int, name: str, pid: int) -> bytes | None:
        """The stat line of `pid`, or None when it exited between listing and reading."""
        fd = self._fds.get(pid)
        if fd is not None:
            try:
                return os.pread(fd, 4096, 0)
            except OSError as exc:
                # ESRCH: that process is gone (its pid may already be another's): reopen.
                del self._fds[pid]
                os.close(fd)
                if exc.errno != errno.ESRCH:
                    return None
        try:
            fd = os.open(name + "/stat", os.O_RDONLY, dir_fd=proc_fd)
        except OSError:
            return None
        try:
            data = os.read(fd, 4096)
        except OSError:
            os.close(fd)
            return None
        if len(self._fds) < self._keep:
            self._fds[pid] = fd
        else:
            os.close(fd)
        return data

    def sample(self, now: float) -> dict[int, ProcRaw]:
        out: dict[int, ProcRaw] = {}
        stats: dict[int, tuple[bytes, ProcRaw]] = {}
        # Relative to an open /proc: a third less CPU than open() by full path.
        proc_fd = os.open(self.proc_root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            names = os.listdir(proc_fd)
            for name in names:
                if not name.isdigit():
                    continue
                pid = int(name)
                data = self._read_stat(proc_fd, name, pid)
                if not data:
                    continue
                seen = self._last.get(pid)
                if seen is not None and seen[0] == data:
                    # Most processes sleep: an identical stat line is the same sample (no parse,
                    # no new object; the analysis can then skip them too).
                    out[pid] = seen[1]
                    stats[pid] = seen
                    continue
                try:
                    comm, ticks, start, rss_pages = parse_stat(data)
                except (ValueError, IndexError):
                    continue
                raw = ProcRaw(
                    self._static(pid, start, comm, data), ticks / CLOCK_TICKS, rss_pages * PAGE_SIZE
                )
                out[pid] = raw
                stats[pid] = (data, raw)
        finally:
            os.close(proc_fd)
        self._last = stats
        for gone in self._info.keys() - out.keys():
            del self._info[gone]
        for gone in self._fds.keys() - out.keys():
            os.close(self._fds.pop(gone))
        return out

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._info.clear()
        self._last.clear()
