"""Least privilege: once the probes are loaded (and the RAPL files opened), give up root.

Root is needed to load eBPF programs and attach them, to read the probes' maps by id and to
open RAPL's root-only energy files. None of that is needed afterwards: a process keeps using
the file descriptors it holds (BPF maps and links, perf events, open files) whatever its
credentials, and kernel 6.18 checks capabilities only when a map or program is created or
loaded, not for lookups on a held map fd. So the console, `snapshot` and long runs drop to the
invoking user (SUDO_UID/SUDO_GID) or to `nobody`, with no supplementary groups and no
capabilities, and set no_new_privs so no exec can regain any.

Two steps, because Linux keeps some of this per thread. uid, gid and groups change in every
thread at once (glibc broadcasts set*id), and with them the effective and permitted
capabilities; but the bounding set, the ambient set and no_new_privs belong to the calling
thread and are inherited only by threads (and children) it starts later. So `limit()` runs
first, on the main thread before any other thread exists: it empties the bounding and
ambient sets and sets no_new_privs, which takes nothing from the root process as it is (its
permitted and effective sets stay) but means no exec can ever gain a capability. `drop()`
then changes the user once the probes are loaded, from whatever thread built the engine.
"""

from __future__ import annotations

import ctypes
import os
import pwd
from dataclasses import dataclass

from obs_tui.sources.accounts import target_user

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


class PrivilegeError(Exception):
    """The drop was asked for and did not fully happen: the caller must not go on as root."""


@dataclass(frozen=True)
class Dropped:
    uid: int
    gid: int
    user: str
    root_seconds: float  # from process start to the drop
    dropped: bool  # False: was not root (nothing to drop) or kept on request


def seconds_since_start() -> float:
    """How long this process has existed (its start time in /proc/self/stat vs uptime)."""
    with open("/proc/self/stat", "rb") as f:
        data = f.read()
    start_ticks = int(data[data.rindex(b")") + 2 :].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return max(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


def status_fields(path: str = "/proc/thread-self/status") -> dict[str, str]:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def _death_signal() -> int:
    """The signal this process gets when its parent dies (PR_SET_PDEATHSIG), 0 for none."""
    signal = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(PR_GET_PDEATHSIG, ctypes.byref(signal), 0, 0, 0)
    return signal.value


def _prctl(*args: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(*(ctypes.c_ulong(a) for a in args), *(ctypes.c_ulong(0),) * (5 - len(args))) != 0:
        err = ctypes.get_errno()
        raise PrivilegeError(f"prctl({args[0]}) failed: {os.strerror(err)}")


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # dropping a capability the kernel does not know fails harmlessly (EINVAL)


def limit() -> None:
    """Empty the capability bounding and ambient sets and set no_new_privs, for this thread
    and every thread or child started after it. Call before any thread is started."""
    if os.geteuid() != 0:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        return
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    for cap in range(_cap_last() + 1):
        try:
            _prctl(PR_CAPBSET_DROP, cap)
        except PrivilegeError:
            pass  # EINVAL for a cap this kernel does not have; drop() checks the result
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def drop(keep_root: bool = False, environ=os.environ) -> Dropped:
    """Become the target user with no capabilities. Raises PrivilegeError if that failed
    half-way; returns dropped=False when not root or when `keep_root` asks to stay."""
    started = seconds_since_start()
    if os.geteuid() != 0 or keep_root:
        return Dropped(os.getuid(), os.getgid(), pwd_name(os.getuid()), started, False)
    uid, gid, name = target_user(environ)
    unreadable = _unreadable_as(uid, gid, code_dirs())
    if unreadable:
        # Textual and obs-tui import modules lazily: as a user who cannot read them the
        # console would fail later, in the middle of an incident. Say so now.
        raise PrivilegeError(
            f"user {name} cannot read {unreadable} (install obs-tui where other users can read it)"
        )
    limit()  # again, for this thread: a no-op where limit() already ran on its creator
    death_signal, parent = _death_signal(), os.getppid()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # from root to non-root: permitted and effective caps cleared
    if death_signal:
        # The kernel clears the parent-death signal on a change of credentials: a child that
        # was to die with its parent (the demo's agent) would outlive a killed parent.
        _prctl(PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:  # the parent died during the drop
            os.kill(os.getpid(), death_signal)
    status = status_fields()
    uids = status["Uid"].split()
    caps = [int(status[k], 16) for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")]
    if set(uids) != {str(uid)} or any(caps) or status.get("NoNewPrivs") != "1":
        raise PrivilegeError(
            f"privileges not dropped: Uid {status['Uid']}, CapEff {status['CapEff']}, "
            f"CapBnd {status['CapBnd']}"
        )
    return Dropped(uid, gid, name, started, True)


def code_dirs() -> list[str]:
    """The directories read after the drop: modules imported lazily, and the themes the
    console cycles through with T."""
    import rich
    import textual

    import obs_tui
    from obs_tui.tui.themes import THEMES_DIR

    return [os.path.dirname(str(m.__file__)) for m in (obs_tui, textual, rich)] + [str(THEMES_DIR)]


def _unreadable_as(uid: int, gid: int, paths: list[str]) -> str:
    """The first of paths that uid/gid (no supplementary groups) cannot list, "" if none.
    Tried for real in a forked child that becomes that user: permission bits, ACLs and
    every parent directory are then the kernel's business, not a guess of ours."""
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe-ish calls, then _exit
        code = 0
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            for i, path in enumerate(paths):
                if not os.access(path, os.R_OK | os.X_OK):
                    code = 10 + i
                    break
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return ""
    return paths[code - 10] if 10 <= code < 10 + len(paths) else "its own files (could not check)"


def pwd_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
