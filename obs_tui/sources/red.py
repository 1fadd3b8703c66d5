"""RED of every HTTP/1.x server on the host: loads bpf/red.c through bcc and reads its maps.

The probe aggregates in kernel (counts and latency histograms per tgid, method, status and
path), so a sample is one pass over a small hash whatever the request rate, and nothing can
be dropped between kernel and user space; what the probe itself could not record is counted
in its `lost` array and reported as red.lost_events.

Stats are keyed by a hash of the path; the path's bytes sit in the `paths` map, written by
the probe before the first stats entry naming them. Reading stats before paths therefore
finds every path, and a hash always names the same path, so it is looked up once and cached.

The probe counts a request on the process that read it. A fork-per-connection server's
children exit before they are looked at, so each process is attributed once to its service
(_owner): itself, or the listening server that forked it (raw.serves_for). A child's
counters are added to its server's, and once the child is gone they are moved out of the
kernel's maps into `_retired` here, so the server's totals never go down.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from obs_tui.bcc_setup import probe_source
from obs_tui.model import Capability
from obs_tui.probe_constants import UNDECODED_KINDS
from obs_tui.raw import METHODS, RedRaw, ServiceInfo, StatEntry, StatKey, serves_for
from obs_tui.sources.base import SourceError
from obs_tui.sources.bpf_maps import MapReader
from obs_tui.sources.h2_streams import H2Streams
from obs_tui.sources.listening import listening_inodes, listening_pids, ports_of
from obs_tui.sources.ringbuf import RingReader
from obs_tui.sources.service_identity import ServiceNaming
from obs_tui.sources.tls_targets import OPENSSL_ENTRY, OPENSSL_RETURN, ObjectId, mapped_objects, object_id
from obs_tui.sources.tls_uprobes import TlsUprobes
from obs_tui.text import printable

BPF_SOURCE = probe_source("red.c")
LIBSSL = "/lib/x86_64-linux-gnu/libssl.so.3"
PRUNE_EVERY_S = 10.0
NONZERO_BYTE = re.compile(rb"[^\x00]")
PORTS_TTL_S = 15.0
ANCESTORS = 8  # how far up the tree a child's server is looked for
# At load, how long the TLS code of the servers already listening may take to find: the probes
# must be attached before root is dropped (the rest is attached later, while root lasts).
TLS_LOOK_AT_LOAD_S = 10.0


# The HTTP/2 ring buffer (16 MiB) is drained this often while events come. A drain pays a
# fixed cost besides its events: the thread's wakeup, and above all the CPU's caches, which the
# host's other work (the servers themselves) has taken meanwhile, refilled with the decoder's
# code and data; so fewer, larger batches cost less per request. A quarter of a second of
# events still takes a small part of the ring at the highest rates h2load reaches.
H2_DRAIN_S = 0.25
H2_IDLE_DRAIN_S = 0.5  # and, while none come, at most this seldom (a host with no HTTP/2 pays little)


class UndecodedKey(NamedTuple):
    pid: int
    kind: str
    gen: int = 0


class RedSource:
    name = "red"
    mode = "live"

    def __init__(
        self,
        routes=(),
        max_children: int = 10,
        bpf_source: Path = BPF_SOURCE,
        libssl: str = LIBSSL,
        notice=lambda line: None,
        naming: ServiceNaming | None = None,
    ) -> None:
        self.patterns = tuple(routes)
        self.naming = naming or ServiceNaming()  # service names (OTEL_SERVICE_NAME, rules)
        self.max_children = max_children
        self.bpf_source = Path(bpf_source)
        self.libssl = libssl
        self.notice = notice  # where the kernel-headers fallback says what it assembled
        self.load_seconds: float | None = None
        self.https = False  # uprobes on libssl attached
        self._bpf: Any = None  # bcc.BPF once loaded (bcc has no types)
        self._capability: Capability | None = None
        self._info: dict[int, tuple[float, ServiceInfo, int]] = {}  # pid -> (when, info, generation)
        self._dead_since: dict[tuple[int, int], float] = {}  # (tgid, generation) -> first seen dead
        self._last_prune = 0.0
        self._paths: dict[int, str] = {}  # path hash -> path: a hash always names one path
        # stats key bytes -> (hash of the value bytes, key, entry): a hash, not the value (its
        # histogram is kilobytes), so a full stats map costs little to remember
        self._last_stats: dict[bytes, tuple] = {}
        self._readers: dict[str, MapReader] = {}  # map name -> its reader, once loaded
        self._orphans: set[int] = set()  # path hashes no stats entry named at the last prune
        # Ports of the servers found at load, while root could read every /proc/PID/fd: after
        # the privilege drop only the new user's own processes can be looked at.
        self._load_ports: dict[int, tuple[int, ...]] = {}
        self._inodes: dict[int, int] = {}
        self._inodes_at: float | None = None
        # (pid, generation) -> (pid, generation) of the service its requests count under
        self._owners: dict[tuple[int, int], tuple[int, int]] = {}
        # Counters of children that exited, added up under their server's key (see the module
        # docstring); and the last sums of several children's entries, reused while unchanged
        self._retired: dict[StatKey, StatEntry] = {}
        self._retired_undecoded: dict[UndecodedKey, int] = {}
        self._sums: dict[StatKey, tuple[tuple[StatEntry, ...], StatEntry]] = {}
        self._tls_decoded: dict[tuple[int, int], bool] = {}  # (pid, gen) -> its TLS is decoded
        # TLS code beyond the system libssl (Node, Go, a server's own OpenSSL): found in the
        # servers' memory maps by a worker thread, probed once per object
        self.tls: TlsUprobes | None = None
        self._libssl_id: ObjectId | None = None
        # HTTP/2: the probe's header-block events, drained by a thread as they come (the ring
        # buffer holds seconds of traffic, not a tick's worth at any rate) and decoded here
        self.h2 = H2Streams()
        self._h2_stop = threading.Event()
        self._h2_thread: threading.Thread | None = None
        self._h2_ring: RingReader | None = None

    # -- Source protocol --

    def available(self) -> Capability:
        """Checks privileges and the kernel, then compiles and attaches the probe (once)."""
        if self._capability is None:
            self._capability = self._load()
        return self._capability

    def sample(self, now: float) -> RedRaw:
        capability = self.available()
        if not capability.ok:
            raise SourceError(capability.reason)
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._prune(now)
            self._last_prune = now
        self._follow_tls()
        live = self._generations()
        stats = self._current({**self._read_stats(), **self.h2.entries()}, live)
        undecoded = self._current(self._read_undecoded(), live)
        for key in (*stats, *undecoded):
            if (key.pid, key.gen) not in self._owners:
                self._owners[(key.pid, key.gen)] = self._owner(key.pid, key.gen, live, now)
        # judged on the process that read them (a fork-per-connection child, maybe)
        undecoded = {
            key: n
            for key, n in undecoded.items()
            if not (key.kind == "tls" and self._decrypts(key.pid, key.gen))
        }
        stats = self._fold_stats(stats)
        counts: dict[UndecodedKey, int] = dict(self._retired_undecoded)
        for key, n in undecoded.items():
            pid, gen = self._owners[(key.pid, key.gen)]
            folded = UndecodedKey(pid, key.kind, gen)
            counts[folded] = counts.get(folded, 0) + n
        reasons = self._tls_reasons(counts)
        gens: dict[int, int] = {}
        keys: list[StatKey | UndecodedKey] = [*stats, *counts]
        for seen in keys:
            gens[seen.pid] = max(seen.gen, gens.get(seen.pid, 0))
        lost = self._read_lost()
        return RedRaw(
            lost_events=sum(lost),
            lost_by_slot=lost,
            stats=stats,
            services={pid: self._service(pid, gen, now) for pid, gen in gens.items()},
            patterns=self.patterns,
            max_children=self.max_children,
            undecoded={(key.pid, key.kind): n for key, n in counts.items()},
            undecoded_reasons=reasons,
        )

    def close(self) -> None:
        if self.tls is not None:
            self.tls.close()
        if self._h2_thread is not None:
            self._h2_stop.set()
            self._h2_thread.join()
            self._h2_thread = None
        if self._h2_ring is not None:
            self._h2_ring.close()
            self._h2_ring = None
        if self._bpf is not None:
            if os.geteuid() != 0:
                _release_uprobes(self._bpf)
            self._bpf.cleanup()
            self._bpf = None
            self._readers = {}
        self._capability = Capability(False, "closed")

    # -- loading --

    def _load(self) -> Capability:
        from obs_tui.bcc_setup import load_program

        started = time.monotonic()
        # The servers listening now, and their TLS code looked for while the probe compiles
        self._load_ports = listening_pids()
        self._libssl_id = object_id(self.libssl) if os.path.exists(self.libssl) else None
        self.tls = TlsUprobes(skip=[self._libssl_id] if self._libssl_id else [])
        self.tls.look_at(self._load_ports)
        self._bpf, cap = load_program(self.bpf_source, notice=self.notice)
        if not cap.ok:
            self.tls.close()
            return cap
        try:
            self._load_h2_walk()
        except Exception as exc:  # bcc raises bare Exception with the verifier's words
            self._bpf.cleanup()
            self._bpf = None
            return Capability(
                False, f"probe failed to load its tail-called programs (HTTP/2 walk, TLS): {exc}"
            )
        partial = self._attach_ssl()
        if not self.tls.wait(TLS_LOOK_AT_LOAD_S):
            self.notice(
                f"requests: TLS code of servers still being looked for after {TLS_LOOK_AT_LOAD_S:g} s"
            )
        self._attach_tls()
        ring = self._bpf[b"h2_events"]
        self._h2_ring = RingReader(ring.map_fd, ring.max_entries)
        self._h2_thread = threading.Thread(target=self._drain_h2, name="red-h2", daemon=True)
        self._h2_thread.start()
        self._mark_servers()
        armed = self._bpf[b"armed"]
        armed[ctypes.c_int(0)] = ctypes.c_uint32(1)  # every program attached: start (red.c)
        self.load_seconds = time.monotonic() - started
        return Capability(True, partial)

    def _attach_ssl(self) -> str:
        """Uprobes on libssl, all or none: with only the read side attached, requests would
        start and never finish. Returns why HTTPS is not traced ("" when it is)."""
        if not os.path.exists(self.libssl):
            return f"HTTPS not traced: {self.libssl} not found"
        name = self.libssl.encode()
        probes = [(sym, fn, False) for sym, fn in OPENSSL_ENTRY.items()]
        probes += [(sym, fn, True) for sym, fn in OPENSSL_RETURN.items()]
        for done, (sym, fn, ret) in enumerate(probes):
            try:
                attach = self._bpf.attach_uretprobe if ret else self._bpf.attach_uprobe
                attach(name=name, sym=sym.encode(), fn_name=fn.encode())
            except Exception as exc:  # bcc raises bare Exception
                for sym_done, _, ret_done in probes[:done]:
                    try:
                        detach = self._bpf.detach_uretprobe if ret_done else self._bpf.detach_uprobe
                        detach(name=name, sym=sym_done.encode())
                    except Exception:
                        pass  # detached with the rest at close
                # Plain HTTP still works; the pane says what is missing.
                return f"HTTPS not traced: cannot attach to {sym} in {self.libssl}: {exc}"
        self.https = True
        return ""

    # -- TLS beyond the system libssl (sources/tls_uprobes.py) --

    def _attach_tls(self) -> None:
        """Attach what the worker found; a process judged as not decrypting may now be."""
        assert self.tls is not None
        if self.tls.attach_found(self._bpf):
            self._tls_decoded = {which: True for which, known in self._tls_decoded.items() if known}

    def _follow_tls(self) -> None:
        """Servers that listened since the last tick: their TLS code is looked for (the probe
        notes each listen() in `listeners`); probes found meanwhile are attached."""
        assert self.tls is not None
        table = self._bpf[b"listeners"]
        fresh = [int.from_bytes(key_bytes[:4], "little") for key_bytes, _ in self._reader("listeners").raw()]
        for tgid in fresh:
            table.pop(table.Key(tgid), None)
        if fresh:
            self.tls.look_at(fresh)
        self._attach_tls()

    def _tls_reasons(self, counts: dict[UndecodedKey, int]) -> dict[int, str]:
        """Why each service with undecoded TLS connections is not decrypted, where known; a
        service not looked at yet is (the next ticks say why)."""
        assert self.tls is not None
        tls = self.tls
        pids = {key.pid for key in counts if key.kind == "tls"}
        tls.look_at(pid for pid in pids if not tls.looked_at(pid))
        return {pid: why for pid in pids if (why := tls.reason(pid))}

    # -- HTTP/2 --

    def _load_h2_walk(self) -> None:
        """The programs bpf/red.c reaches by tail calls, each put in its own prog array: the
        frame walk's (h2_walk_more), one per program type that calls on_read/on_write, which
        tail-calls itself through it; and tls_io, which every TLS uprobe hands its call to."""
        bpf = self._bpf
        for fn, progs, prog_type in (
            (b"h2_walk_tp", b"h2_walk_tp_progs", type(bpf).RAW_TRACEPOINT),
            (b"h2_walk_up", b"h2_walk_up_progs", type(bpf).KPROBE),
            (b"tls_io", b"tls_io_progs", type(bpf).KPROBE),
        ):
            prog = bpf.load_func(fn, prog_type)
            bpf[progs][ctypes.c_int(0)] = ctypes.c_int(prog.fd)

    def _drain_h2(self) -> None:
        """The probe never wakes this thread (red.c, h2_emit): it drains what came every
        H2_DRAIN_S while events come, well before the ring buffer can fill at any rate the probe
        sees; while none come the wait doubles up to H2_IDLE_DRAIN_S, so an idle host is not
        woken fifty times a second (a full ring is a counted lost event, never a silent one)."""
        assert self._h2_ring is not None
        wait = H2_DRAIN_S
        while not self._h2_stop.wait(wait):
            wait = H2_DRAIN_S if self._drain_h2_once() else min(2 * wait, H2_IDLE_DRAIN_S)
        self._drain_h2_once()

    def _drain_h2_once(self) -> int:
        """Decodes what the ring holds, a batch at a time (sources/ringbuf.py); the bytes of
        events handed over (0: none came)."""
        assert self._h2_ring is not None
        return self._h2_ring.drain(self.h2.feed_batch)

    # -- reading the maps --

    def _read_lost(self) -> tuple[int, ...]:
        """Cumulative lost counts per slot (summed over CPUs), in slot order."""
        slots = sorted(self._bpf[b"lost"].items(), key=lambda kv: kv[0].value)
        return tuple(sum(per_cpu) for _, per_cpu in slots)

    def _read_stats(self) -> dict[StatKey, StatEntry]:
        decode = self._bpf[b"stats"].Key.from_buffer_copy
        out = {}
        seen: dict[bytes, tuple[int, StatKey, StatEntry]] = {}
        for key_bytes, raw in self._reader("stats").raw():
            version = hash(raw)
            last = self._last_stats.get(key_bytes)
            if last is not None and last[0] == version:  # no request since: the same entry
                out[last[1]] = last[2]
                seen[key_bytes] = last
                continue
            k = decode(key_bytes)
            method = METHODS[k.method] if k.method < len(METHODS) else "?"
            key = StatKey(
                k.tgid, method, k.status, self._path(k.path_hash), bool(k.truncated), k.gen, bool(k.tls)
            )
            out[key] = _stat_entry(raw)
            seen[key_bytes] = (version, key, out[key])
        self._last_stats = seen
        return out

    def _read_undecoded(self) -> dict[UndecodedKey, int]:
        """Connections the probe could not decode, per process, generation and kind."""
        table = self._bpf[b"undecoded"]
        out = {}
        for key_bytes, value_bytes in self._reader("undecoded").raw():
            k = table.Key.from_buffer_copy(key_bytes)
            kind = UNDECODED_KINDS[k.kind] if k.kind < len(UNDECODED_KINDS) else "?"
            out[UndecodedKey(k.tgid, kind, k.gen)] = int.from_bytes(value_bytes[:8], "little")
        return out

    def _generations(self) -> dict[int, int]:
        """tgid -> its live generation, for the servers that exited at least once (few)."""
        return {k.value: v.value for k, v in self._bpf[b"generations"].items()}

    @staticmethod
    def _current(counters: dict, gens: dict[int, int]) -> dict:
        """Without the counters of a process whose pid now belongs to a newer one: those
        were reported while it lived, and must not be added to the newcomer's."""
        if not gens:
            return counters
        stale = {pid for pid, gen in gens.items() if not _exited(pid)}
        return {
            key: value for key, value in counters.items() if key.pid not in stale or key.gen == gens[key.pid]
        }

    # -- attribution: which service a process's requests count under --

    def _owner(self, pid: int, gen: int, gens: dict[int, int], now: float) -> tuple[int, int]:
        """The process itself, or the nearest listening ancestor it serves for (a fork-per-
        connection child: raw.serves_for). Decided once per process, at its first
        counted request, and kept: a child's requests never move from one service to another."""
        child = self._info_of(pid, gen, now)
        parent = self._parent(pid, alive=child is not None)
        for _ in range(ANCESTORS):
            if not parent or parent == pid:
                break
            gen_now = gens.get(parent, 0)
            ancestor = self._info_of(parent, gen_now, now)
            if ancestor is not None and ancestor.ports:
                return (parent, gen_now) if serves_for(child, ancestor) else (pid, gen)
            parent = self._parent(parent, alive=ancestor is not None)
        return pid, gen

    def _parent(self, pid: int, alive: bool) -> int:
        """The server that forked pid (recorded by the probe at fork: the child may be gone), or
        for a process that predates the probe, its parent now; 0 when unknown."""
        forks = self._bpf[b"forks"]
        try:
            return forks[forks.Key(pid)].value
        except KeyError:
            pass
        if not alive:
            return 0
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            return int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    def _fold_stats(self, stats: dict[StatKey, StatEntry]) -> dict[StatKey, StatEntry]:
        """Each entry under its service's key, children's entries added to their server's."""
        groups: dict[StatKey, list[StatEntry]] = {}
        for key, entry in stats.items():
            pid, gen = self._owners[(key.pid, key.gen)]
            folded = key if (pid, gen) == (key.pid, key.gen) else key._replace(pid=pid, gen=gen)
            groups.setdefault(folded, []).append(entry)
        for key, entry in self._retired.items():
            groups.setdefault(key, []).append(entry)
        out = {}
        sums = {}
        for key, parts in groups.items():
            if len(parts) == 1:
                out[key] = parts[0]
                continue
            # Several children's entries: the same sum object while none changed (analysis.red
            # takes an unchanged object as "no new requests" without subtracting histograms)
            last = self._sums.get(key)
            if (
                last is not None
                and len(last[0]) == len(parts)
                and all(a is b for a, b in zip(last[0], parts))
            ):
                out[key] = last[1]
            else:
                total = parts[0]
                for part in parts[1:]:
                    total = total + part
                out[key] = total
            sums[key] = (tuple(parts), out[key])
        self._sums = sums
        return out

    def _decrypts(self, pid: int, gen: int) -> bool:
        """Whether the process's TLS goes through code the uprobes are on (its requests are
        then decoded, and its ClientHellos, which the socket probe counts, are not undecoded):
        it called it (the probe's ssl_users bit), or it maps a probed file (the system
        libssl, Node's binary, a Go binary). Java and static binaries do neither. A child gone
        before it was looked at is judged by its server; unknown counts as not decrypted:
        flagged, and looked at again once more objects are probed."""
        traced = self._traced()
        if not traced:
            return False
        known = self._tls_decoded.get((pid, gen))
        if known is not None:
            return known
        word = self._bpf[b"ssl_users"][ctypes.c_uint32(pid >> 6)].value
        if word & (1 << (pid & 63)):
            known = True
        else:
            try:
                known = not traced.isdisjoint(mapped_objects(pid))
            except OSError:  # gone, or another user's after the privilege drop
                owner = self._owners.get((pid, gen), (pid, gen))
                return owner != (pid, gen) and self._decrypts(*owner)
        self._tls_decoded[(pid, gen)] = known
        return known

    def _traced(self) -> set[ObjectId]:
        """The files whose TLS functions the uprobes are on."""
        traced = self.tls.traced() if self.tls is not None else set()
        if self.https and self._libssl_id is not None:
            traced.add(self._libssl_id)
        return traced

    def _path(self, path_hash: int) -> str:
        path = self._paths.get(path_hash)
        if path is None:
            paths = self._bpf[b"paths"]
            try:
                raw = bytes(paths[paths.Key(path_hash)].path)
            except KeyError:
                # Cannot happen while the probe publishes paths first; never drop the counts.
                return "?"
            path = self._paths[path_hash] = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        return path

    # -- services --

    def _service(self, pid: int, gen: int, now: float) -> ServiceInfo:
        return self._info_of(pid, gen, now) or ServiceInfo("?", "", ())

    def _info_of(self, pid: int, gen: int, now: float) -> ServiceInfo | None:
        """What a process is (name, command line, ports), or None for a process gone before it
        was ever looked at."""
        cached = self._info.get(pid)
        if cached and cached[2] == gen and now - cached[0] < PORTS_TTL_S:
            return cached[1]
        proc = Path("/proc") / str(pid)
        try:
            if _exited(pid):  # a zombie has no command line nor descriptors left to name it by
                raise FileNotFoundError(pid)
            comm = printable((proc / "comm").read_text(errors="replace").strip())
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            cmdline = printable(argv.decode(errors="replace").strip())
            # /proc/PID/fd is the owner's only once root is dropped; the ports found at load
            # belong to the process that had the pid then (generation 0)
            ports = ports_of(pid, self._listening(now)) or (self._load_ports.get(pid, ()) if gen == 0 else ())
            info = ServiceInfo(comm, cmdline, ports, self.naming.name(pid, comm, cmdline, ports))
        except OSError:
            if cached and cached[2] == gen:  # exited: keep what we knew, so its last requests have a name
                return cached[1]
            return None
        self._info[pid] = (now, info, gen)
        return info

    def _listening(self, now: float) -> dict[int, int]:
        """The listening sockets' inodes, read once per sample however many services need
        their ports (sources/listening.py: one netlink dump, or /proc/net/tcp without it)."""
        if self._inodes_at != now:
            self._inodes, self._inodes_at = listening_inodes(), now
        return self._inodes

    def _mark_servers(self) -> None:
        """Set the server bit of every process that listens on TCP, so requests on connections
        it accepted before the probe attached (long-lived keep-alive) are seen too: the probe
        starts tracking such a connection at its next request (bpf/red.c, on_read). Once, at
        load: servers started later are marked in kernel, at listen() and at a server's fork
        (this scan walks every process's fds, too costly to repeat each tick)."""
        servers = self._bpf[b"servers"]
        self.naming.prime(self._load_ports)  # while root: environ and exe are the owner's
        for tgid in self._load_ports:
            key = ctypes.c_uint32(tgid >> 6)
            word = servers[key]
            if not word.value & (1 << (tgid & 63)):
                word.value |= 1 << (tgid & 63)
                servers[key] = word

    def _reader(self, name: str) -> MapReader:
        reader = self._readers.get(name)
        if reader is None:
            reader = self._readers[name] = MapReader(self._bpf[name.encode()])
        return reader

    def _prune(self, now: float) -> None:
        """Forget processes that exited: their connections, server bit and, after a grace
        period (so their last requests are reported), their counters. The stats keys are the
        last sample's (a key made since is looked at by the next prune): listing the map again
        would read every ~3 KB value once more."""
        conns, stats, servers = self._bpf[b"conns"], self._bpf[b"stats"], self._bpf[b"servers"]
        dead = set()
        # A TCP connection's entry goes with its socket (bpf/red.c); these are what a process
        # that died held on other sockets, and its HTTPS connections.
        for key_bytes, value_bytes in self._reader("conns").raw():
            tgid = conns.Leaf.from_buffer_copy(value_bytes).tgid
            if not _alive(tgid):
                dead.add(tgid)
                conns.pop(conns.Key.from_buffer_copy(key_bytes), None)
        # Go goroutines waiting in crypto/tls's Read when their process died (bpf/red.c)
        go_stash = self._bpf[b"go_tls_stash"]
        for key_bytes, _ in self._reader("go_tls_stash").raw():
            key = go_stash.Key.from_buffer_copy(key_bytes)
            if not _alive(key.tgid):
                go_stash.pop(key, None)
        for tgid in dead:
            word = servers[ctypes.c_uint32(tgid >> 6)]
            word.value &= ~(1 << (tgid & 63))
            servers[ctypes.c_uint32(tgid >> 6)] = word
        gens = self._generations()
        kept: set[tuple[int, int]] = set()  # (tgid, generation) that still have counters
        named: set[int] = set()  # path hashes of the stats entries kept

        def gone(which: tuple[int, int]) -> str:
            """ "" while the process lives; "retire" for a child whose server lives (its counters
            join the server's); "forget" once dead past the grace period."""
            if _alive(which[0]) and which[1] == gens.get(which[0], 0):
                self._dead_since.pop(which, None)
                return ""
            owner = self._owners.get(which, which)
            if owner != which and _alive(owner[0]) and owner[1] == gens.get(owner[0], 0):
                return "retire"
            return "forget" if now - self._dead_since.setdefault(which, now) >= 3 * PRUNE_EVERY_S else ""

        for key_bytes in list(self._last_stats):
            key = stats.Key.from_buffer_copy(key_bytes)
            tgid, which = key.tgid, (key.tgid, key.gen)
            fate = gone(which)
            if fate:
                leaf = stats.pop(key, None)
                _, child_key, _ = self._last_stats.pop(key_bytes)
                if fate == "retire" and leaf is not None:
                    pid, gen = self._owners[which]
                    folded = child_key._replace(pid=pid, gen=gen)
                    entry = _stat_entry(bytes(leaf))
                    have = self._retired.get(folded)
                    self._retired[folded] = entry if have is None else have + entry
                elif self._info.get(tgid, (0, None, -1))[2] == key.gen:
                    self._info.pop(tgid, None)
                continue
            kept.add(which)
            named.add(key.path_hash)
        undecoded = self._bpf[b"undecoded"]
        for key_bytes, value_bytes in self._reader("undecoded").raw():
            key = undecoded.Key.from_buffer_copy(key_bytes)
            which = (key.tgid, key.gen)
            fate = gone(which)
            if fate:
                undecoded.pop(key, None)
                kind = UNDECODED_KINDS[key.kind] if key.kind < len(UNDECODED_KINDS) else "?"
                if fate == "retire" and not (kind == "tls" and self._decrypts(*which)):
                    pid, gen = self._owners[which]
                    folded = UndecodedKey(pid, kind, gen)
                    self._retired_undecoded[folded] = self._retired_undecoded.get(folded, 0) + int.from_bytes(
                        value_bytes[:8], "little"
                    )
                continue
            kept.add(which)
        retired_maps: tuple[dict[Any, Any], ...] = (self._retired, self._retired_undecoded)
        for retired in retired_maps:
            for key in list(retired):
                which = (key.pid, key.gen)
                if gone(which) == "forget":
                    del retired[key]
                else:
                    kept.add(which)
        self._owners = {which: owner for which, owner in self._owners.items() if which in kept}
        self._tls_decoded = {which: v for which, v in self._tls_decoded.items() if which in kept}
        self._dead_since = {which: t for which, t in self._dead_since.items() if which in kept}
        left = {tgid for tgid, _ in kept}
        table = self._bpf[b"generations"]
        for tgid in gens:
            # Forgotten once nothing of it is left: the next process on that pid starts at 0
            # again, and no counters of an earlier generation 0 remain to be confused with it.
            if tgid not in left and not _alive(tgid):
                del table[table.Key(tgid)]
        # A path is forgotten once no stats entry has named it at two prunes in a row: the probe
        # publishes a path just before the stats entry naming it, so one listing could miss it.
        paths = self._bpf[b"paths"]
        hashes = (int.from_bytes(key_bytes, "little") for key_bytes, _ in self._reader("paths").raw())
        orphans = {path_hash for path_hash in hashes if path_hash not in named}
        for path_hash in orphans & self._orphans:
            paths.pop(paths.Key(path_hash), None)
            self._paths.pop(path_hash, None)
        self._orphans = orphans - self._orphans


def _stat_entry(raw: bytes) -> StatEntry:
    """A stats value's bytes: count, sum_ns, hist[...]."""
    counts = memoryview(raw).cast("Q")
    # Most of the ~380 buckets are empty: let the regex engine find the non-zero words
    # instead of a Python loop over all of them (a third of a tick's CPU under traffic).
    words = sorted({m.start() // 8 for m in NONZERO_BYTE.finditer(raw, 16)})
    return StatEntry(counts[0], counts[1], tuple((w - 2, counts[w]) for w in words))


def _exited(pid: int) -> bool:
    """Gone, or a zombie its parent has not reaped yet (a fork-per-connection server reaps its
    children lazily): the probe has already moved its pid's generation on."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] in (b"Z", b"X")


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _release_uprobes(bpf) -> None:
    """Detach the libssl uprobes without root. bcc's own detach also removes a tracefs
    uprobe_events entry, which only root may write (and fails there); the uprobes were made
    through the perf uprobe PMU, so closing their perf event fds detaches them."""
    from bcc import lib

    for name, fd in list(bpf.uprobe_fds.items()):
        lib.bpf_close_perf_event_fd(fd)
        bpf._del_uprobe_fd(name)
