"""Uprobes on the TLS code of servers beyond the system libssl, found as servers appear.

The RED source hands over the pids of servers to look at: every listening process at load,
then each process the probe saw listen (bpf/red.c, `listeners`) and each one with undecoded
TLS connections. A worker thread reads their /proc/PID/maps and inspects each mapped object
once (sources/tls_targets.py: symbols and disassembly, tens of milliseconds for Node's
100 MB binary), so the engine's tick never waits on ELF reading. The source's tick then
attaches what the worker found (bcc is used from one thread only): once per object, whatever
the number of processes mapping it, as uprobes apply to a file; a process started later from a
probed file is covered with nothing more to do.

For each server looked at, it keeps why its TLS is not decrypted when it is not: a Go binary
without symbols, an object whose probes failed to attach, nothing known in its maps (Java's
TLS, a static binary), or maps it could not read (once root was dropped, another user's
processes are closed to it). Before a server has been looked at, there is no reason yet.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable
from typing import Any

from obs_tui.sources.tls_targets import ObjectId, Target, describe, inspect, mapped_objects

NOTHING_KNOWN = (
    "no TLS library obs-tui can probe in its memory maps (not OpenSSL, BoringSSL or Go's "
    "crypto/tls: Java, rustls, a static binary)"
)
PIDS_KEPT = 4096  # servers whose objects are remembered (their reasons); the oldest go first


class TlsUprobes:
    def __init__(self, skip: Iterable[ObjectId] = ()) -> None:
        self._skip = set(skip)  # objects probed already (the system libssl)
        self._lock = threading.Lock()
        self._targets: dict[ObjectId, Target | None] = {}  # every object inspected
        self._failed: dict[ObjectId, str] = {}  # object -> why inspecting or attaching failed
        self._pending: list[tuple[ObjectId, Target]] = []  # found by the worker, to attach
        self._attached: set[ObjectId] = set()
        self._objects: dict[int, tuple[ObjectId, ...] | str] = {}  # pid -> its objects, or why unread
        self._queue: queue.Queue[int | threading.Event | None] = queue.Queue()
        self._queued: set[int] = set()
        self._worker: threading.Thread | None = None
        self.attached_objects: dict[ObjectId, str] = {}  # probed object -> its path, for messages

    # -- the source's side (its tick thread) --

    def look_at(self, pids: Iterable[int]) -> None:
        """Read these servers' maps, and inspect the objects not seen yet, in the worker."""
        wanted = list(pids)  # before the lock: the iterable may ask this object (looked_at)
        with self._lock:
            fresh = [pid for pid in wanted if pid not in self._queued]
            self._queued.update(fresh)
        for pid in fresh:
            self._queue.put(pid)
        if fresh:
            self._start()

    def looked_at(self, pid: int) -> bool:
        with self._lock:
            return pid in self._objects

    def pending(self) -> bool:
        """Probes found and not attached yet (the source's next tick attaches them)."""
        with self._lock:
            return bool(self._pending)

    def wait(self, timeout: float) -> bool:
        """Until the worker has looked at every pid handed to it so far (at load: so the
        probes are attached before root is dropped). False when still busy at the timeout."""
        reached = threading.Event()
        self._queue.put(reached)
        self._start()
        return reached.wait(timeout)

    def attach_found(self, bpf: Any) -> list[ObjectId]:
        """Attach the probes of every object the worker found since the last call, each object
        all or none (with a read side and no write side, requests would begin and never end).
        Returns the objects newly probed."""
        with self._lock:
            pending, self._pending = self._pending, []
        done = []
        for ident, target in pending:
            if ident in self._attached:
                continue
            error = _attach(bpf, target)
            with self._lock:
                if error is None:
                    self._targets.pop(ident, None)
                elif error:
                    self._failed[ident] = error
                else:
                    self._attached.add(ident)
                    self.attached_objects[ident] = target.path
                    done.append(ident)
        return done

    def traced(self) -> set[ObjectId]:
        """The objects probed (a process mapping one has its TLS decrypted)."""
        with self._lock:
            return set(self._attached)

    def reason(self, pid: int) -> str:
        """Why this server's TLS is not decrypted, "" when it is or it was not looked at."""
        with self._lock:
            objects = self._objects.get(pid)
            if objects is None:
                return ""
            if isinstance(objects, str):
                return objects
            if any(ident in self._attached or ident in self._skip for ident in objects):
                return ""
            targets = [self._targets[ident] for ident in objects if self._targets.get(ident)]
            if any(target.probes and not target.reason for target in targets if target):
                failed = [self._failed[ident] for ident in objects if ident in self._failed]
                return failed[0] if failed else ""  # "": found, attached at the next tick
            for target in targets:
                if target and target.reason:
                    return f"{describe(target.path)}: {target.reason}"
            failed = [self._failed[ident] for ident in objects if ident in self._failed]
            return failed[0] if failed else NOTHING_KNOWN

    def close(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(5)
            self._worker = None

    # -- the worker --

    def _start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="tls-uprobes", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()  # wait(): everything queued before it has been looked at
                continue
            self._look(item)

    def _look(self, pid: int) -> None:
        try:
            objects = mapped_objects(pid)
        except OSError as exc:
            why = f"its memory maps cannot be read ({exc.strerror or exc})"
            if isinstance(exc, PermissionError):
                why += ": obs-tui gave up root after loading its probes (--keep-root keeps looking)"
            self._remember(pid, why)
            return
        for ident, path in objects.items():
            with self._lock:
                known = ident in self._targets or ident in self._skip
            if known:
                continue
            try:
                target = inspect(path)
            except (OSError, ValueError) as exc:
                with self._lock:
                    self._targets[ident] = None
                    self._failed[ident] = f"{describe(path)}: cannot be inspected: {exc}"
                continue
            with self._lock:
                self._targets[ident] = target
                if target is not None and target.probes:
                    self._pending.append((ident, target))
        self._remember(pid, tuple(objects))

    def _remember(self, pid: int, objects: tuple[ObjectId, ...] | str) -> None:
        with self._lock:
            self._objects.pop(pid, None)
            self._objects[pid] = objects
            self._queued.discard(pid)  # a later listen() of this pid looks again (pid reuse)
            while len(self._objects) > PIDS_KEPT:
                del self._objects[next(iter(self._objects))]


def _attach(bpf: Any, target: Target) -> str | None:
    """Attach every probe of one object, or none: "" when done, else why not; None when the
    file is gone (its container's process exited, or it was deleted): looked at again when a
    process maps it."""
    # Either way bcc would try, and print its complaint to stderr: the console's terminal
    if not os.path.exists(target.path):
        return None
    if os.geteuid() != 0:
        return (
            f"{describe(target.path)}: found after obs-tui gave up root, so its probes cannot be "
            "attached (--keep-root attaches them)"
        )
    path = target.path.encode()
    done: list[tuple[int, bool]] = []
    for probe in target.probes:
        try:
            attach = bpf.attach_uretprobe if probe.uretprobe else bpf.attach_uprobe
            attach(name=path, addr=probe.address, fn_name=probe.fn.encode())
            done.append((probe.address, probe.uretprobe))
        except Exception as exc:  # bcc raises bare Exception
            for address, ret in done:
                try:
                    detach = bpf.detach_uretprobe if ret else bpf.detach_uprobe
                    detach(name=path, addr=address)
                except Exception:
                    pass  # detached with the rest at close
            return f"{describe(target.path)}: cannot attach to {probe.symbol}: {exc}"
    return ""
