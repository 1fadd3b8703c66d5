"""The real console on a pseudo-terminal, with every byte it writes kept.

A test starts `python -m obs_tui ...` with the pty's slave as its controlling terminal
(stdin, stdout and stderr), reads the master in a thread into `raw`, types keys into the
master, and can close the master as a vanished terminal (an ssh session dropped) does.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CSI = b"\x1b["
# What Textual writes when it leaves: alternate screen off, cursor shown, mouse reports off.
LEAVE_ALT_SCREEN, SHOW_CURSOR = b"\x1b[?1049l", b"\x1b[?25h"
MOUSE_OFF = (b"\x1b[?1000l", b"\x1b[?1003l", b"\x1b[?1006l")
ENTER_ALT_SCREEN, HIDE_CURSOR = b"\x1b[?1049h", b"\x1b[?25l"


class PtyConsole:
    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        cols: int = 160,
        rows: int = 50,
        ignore_sighup: bool = False,
        command: list[str] | None = None,
    ) -> None:
        """args: obs-tui's arguments; command: another program to run instead."""
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TERM": "xterm-256color",
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
        }
        full_env.update(env or {})

        def become_session_leader() -> None:  # the pty becomes the controlling terminal
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            if ignore_sighup:  # as nohup, or a shell that ignored it, leaves it
                signal.signal(signal.SIGHUP, signal.SIG_IGN)

        argv = command or [sys.executable, "-m", "obs_tui", *args]
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            cwd=REPO,
            preexec_fn=become_session_leader,
        )
        os.close(slave)
        self._raw = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the console's side is closed; EBADF: we closed ours
                return
            if not chunk:
                return
            with self._lock:
                self._raw += chunk

    @property
    def raw(self) -> bytes:
        with self._lock:
            return bytes(self._raw)

    def wait_for(self, text: bytes, timeout: float = 30.0, after: int = 0) -> int:
        """Where `text` first appears in the output after offset `after`."""
        deadline = time.monotonic() + timeout
        while True:
            at = self.raw.find(text, after)
            if at >= 0:
                return at
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = self.raw[-2000:]
                raise AssertionError(f"{text!r} never written (exit {self.proc.poll()}); tail: {tail!r}")
            time.sleep(0.05)

    def send(self, keys: bytes, pause: float = 0.3) -> None:
        os.write(self.master, keys)
        time.sleep(pause)

    def close_master(self) -> None:
        """The terminal goes away (what sshd does when the connection drops)."""
        os.close(self.master)
        self.master = -1

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code (None if still running after `timeout`), with all its output read."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        return code

    def restored(self) -> bytes:
        """What was written after the console last entered the alternate screen, checked
        to end with the terminal given back: main screen, cursor shown, mouse reports off."""
        raw = self.raw
        tail = raw[raw.rfind(ENTER_ALT_SCREEN) :]
        for seq in (LEAVE_ALT_SCREEN, SHOW_CURSOR, *MOUSE_OFF):
            assert seq in tail, (seq, tail[-400:])
        assert tail.rfind(SHOW_CURSOR) > tail.rfind(HIDE_CURSOR), tail[-400:]
        return tail

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self._reader.join(5)

    def __enter__(self) -> PtyConsole:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sgr_sequences(raw: bytes) -> list[bytes]:
    """The parameters of every SGR sequence (ESC [ ... m) in the output."""
    out, at = [], 0
    while True:
        at = raw.find(CSI, at)
        if at < 0:
            return out
        end = at + 2
        while end < len(raw) and (raw[end : end + 1].isdigit() or raw[end : end + 1] in b";:?<>=$"):
            end += 1
        if raw[end : end + 1] == b"m" and raw[at + 2 : at + 3] not in b"?<>=":
            out.append(raw[at + 2 : end])
        at = end
