"""Reads what names a server (service_names.py): its environment and executable.

/proc/PID/environ and /proc/PID/exe are readable by the process's owner and by root only. The
console gives up root once the probes are loaded (obs_tui/privileges.py), so `prime()` reads
them for the servers found at load, while still root, and keeps what it read: a process's
environment and executable do not change (a reused pid is told apart by its start time).
A server started after the drop is read if the dropped user may (its own processes); for
another user's it falls back to the config's rules and then `exe:port`, and says so nowhere
but in its name, so SECURITY.md and docs/metrics.md describe it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from obs_tui.service_names import ServiceRule, service_name

ENV_VAR = b"OTEL_SERVICE_NAME="
MAX_ENVIRON = 1 << 20  # never read more of an environment than this
MAX_KEPT = 4096  # processes remembered; past it, those that exited are forgotten


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def read_env_name(pid: int) -> str | None:
    """OTEL_SERVICE_NAME of a process: "" when it has none, None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read(MAX_ENVIRON)
    except OSError:
        return None
    for entry in data.split(b"\0"):
        if entry.startswith(ENV_VAR):
            return entry[len(ENV_VAR) :].decode("utf-8", "replace")
    return ""


def read_exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return None


class ServiceNaming:
    """The names of server processes, with what root read at load kept for the session."""

    def __init__(self, rules: Sequence[ServiceRule] = ()) -> None:
        self.rules = tuple(rules)
        # pid -> (start ticks, OTEL_SERVICE_NAME or None, exe or None): None when unreadable
        self._seen: dict[int, tuple[int | None, str | None, str | None]] = {}

    def prime(self, pids: Iterable[int]) -> None:
        """Read the identity of these processes now (called while root, at load)."""
        for pid in pids:
            self._read(pid)

    def _read(self, pid: int) -> tuple[str | None, str | None]:
        started = start_ticks(pid)
        have = self._seen.get(pid)
        # Kept: what was read of this very process (as root, or by its owner); or, once it has
        # exited, whatever was read while it lived, so its last requests keep their name.
        if have is not None and (started is None or have[0] == started):
            if have[1] is not None or started is None:
                return have[1], have[2]
        if len(self._seen) >= MAX_KEPT:
            self._seen = {p: v for p, v in self._seen.items() if start_ticks(p) == v[0]}
        seen = self._seen[pid] = (started, read_env_name(pid), read_exe(pid))
        return seen[1], seen[2]

    def name(self, pid: int, comm: str, cmdline: str, ports: Sequence[int]) -> str:
        env_name, exe = self._read(pid)
        return service_name(comm, ports, env_name or "", exe or "", cmdline, self.rules)
