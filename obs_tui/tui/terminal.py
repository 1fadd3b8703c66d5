"""The console's terminal: every way out gives it back as it was found, and a terminal that
has gone ends the console.

Textual's Linux driver restores the terminal (main screen, cursor shown, mouse reports off,
the saved termios) when the app exits normally or on an exception, but:

- SIGTERM and SIGHUP kill the process by default, leaving the terminal on the alternate
  screen with mouse tracking on and the cursor hidden. Here they (and SIGINT) ask the app to
  exit, so the normal path runs: the engine is closed (probes detached) and the terminal
  restored. The exit code is 128 + the signal's number, as a shell reports a signal.
- When the terminal goes away without a SIGHUP reaching us (started under nohup, or the shell
  ignored it), the driver's input thread reads EOF forever: select() says readable, read()
  returns nothing, and the loop goes round at full speed with the probes still loaded. A
  hung-up tty reports POLLHUP, so a watcher thread sleeping in poll() on it (no input
  consumed, no CPU used) sees the hang-up; a write that fails (EIO) is the same news.
  Then the dead terminal is swapped for /dev/null (output) and an empty pipe (input), so
  the exit path writes and reads nothing that can fail or spin, and the app exits with 129.
"""

from __future__ import annotations

import asyncio
import io
import os
import select
import signal
import threading
from typing import Any, TextIO, cast

from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message

HANGUP_EXIT = 128 + signal.SIGHUP
# If the app has not exited this long after its terminal went away, nobody can see it any
# more: stop the process (the kernel detaches the probes with its descriptors).
BACKSTOP_S = 10.0


class TerminalExit(Message):
    """The driver asks the app to exit with `code`: a signal, or the terminal gone."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__()
        self.code = code
        self.reason = reason


class _Output:
    """Textual's writer thread writes through this. An OSError (EIO once the terminal hung
    up) would end that thread, and every later write would then block on its full queue;
    here it reports the terminal gone instead."""

    def __init__(self, file: TextIO, gone) -> None:
        self._file = file
        self._gone = gone

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except OSError as exc:
            self._gone(f"terminal write failed: {exc.strerror}")

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            self._gone(f"terminal write failed: {exc.strerror}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


class ConsoleDriver(LinuxDriver):
    def __init__(self, app, **options: Any) -> None:
        super().__init__(app, **options)
        if self._file is not None:
            # Textual's writer thread only writes and flushes: the wrapper stands in for its file.
            self._file = cast(io.TextIOWrapper, _Output(self._file, self.terminal_gone))
        self._gone = threading.Event()
        self._tty: os.stat_result | None = None
        self._wake: tuple[int, int] | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None
        self._handlers: dict[signal.Signals, Any] = {}  # ours replaced these
        self._quiet_input: int | None = None  # the write end of the pipe that replaced the input

    # ---- the ways out -----------------------------------------------------------------------

    def start_application_mode(self) -> None:
        super().start_application_mode()
        loop = self._signal_loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            before = signal.getsignal(sig)
            # Ignored at start (nohup) stays ignored: the watcher still sees the terminal go.
            if sig == signal.SIGHUP and before is signal.SIG_IGN:
                continue
            self._handlers.setdefault(sig, before)
            if sig == signal.SIGHUP:
                loop.add_signal_handler(sig, self._on_sighup)
            else:
                loop.add_signal_handler(sig, self._post_exit, 128 + sig, sig.name)
        try:
            self._tty = os.fstat(self.fileno)
        except OSError:
            self._tty = None
        self._wake = os.pipe()
        threading.Thread(
            target=self._watch, args=(self.fileno, self._wake[0]), name="terminal-hangup", daemon=True
        ).start()

    def stop_application_mode(self) -> None:
        if self._wake is not None:  # let the watcher return (also on Ctrl+Z)
            _, wake = self._wake
            self._wake = None
            try:
                os.write(wake, b"x")
            except OSError:  # it has returned already (the terminal hung up)
                pass
            os.close(wake)
        if self._signal_loop is not None:  # the handlers of before (obs-tui demo has its own)
            for sig, before in self._handlers.items():
                self._signal_loop.remove_signal_handler(sig)
                signal.signal(sig, before if before is not None else signal.SIG_DFL)
            self._handlers.clear()
        super().stop_application_mode()

    def disable_input(self) -> None:
        if self._quiet_input is not None:
            os.close(self._quiet_input)
            self._quiet_input = None
        super().disable_input()

    def _post_exit(self, code: int, reason: str) -> None:
        # From a thread or a signal handler: call_soon_threadsafe also wakes the loop.
        if self._signal_loop is not None:
            self._signal_loop.call_soon_threadsafe(self._app.post_message, TerminalExit(code, reason))

    def _sigcont_application(self, *args: Any) -> None:
        # A hang-up sends SIGCONT after SIGHUP, and Textual answers every SIGCONT by
        # starting application mode again (a second input thread reading EOF).
        if self._gone.is_set() or self._hung_up(self.fileno):
            self.terminal_gone("the terminal hung up")
            return
        super()._sigcont_application(*args)

    def _on_sighup(self) -> None:
        if self._hung_up(self.fileno):
            self.terminal_gone("SIGHUP: the terminal hung up")
        else:  # kill -HUP with the terminal still there: leave it as it was found
            self._post_exit(HANGUP_EXIT, "SIGHUP")

    # ---- the terminal gone ------------------------------------------------------------------

    @staticmethod
    def _hung_up(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are reported whatever is asked
        return bool(poller.poll(0))

    def _watch(self, fd: int, wake: int) -> None:
        poller = select.poll()
        poller.register(fd, 0)
        poller.register(wake, select.POLLIN)
        try:
            while True:
                for ready, _events in poller.poll():
                    if ready == wake:
                        return
                    self.terminal_gone("the terminal hung up")
                    return
        finally:
            os.close(wake)

    def terminal_gone(self, reason: str) -> None:
        """Swap the dead terminal for /dev/null and an empty pipe, and ask the app to exit."""
        if self._gone.is_set():
            return
        self._gone.set()
        tty = self._tty
        null = os.open(os.devnull, os.O_RDWR)
        # An empty pipe for the input: the input thread sleeps in select() instead of reading
        # EOF in a loop; its write end is closed when the input stops (disable_input), which
        # also frees a read() that began on the dead terminal and now waits on the pipe.
        quiet, self._quiet_input = os.pipe()
        for fd in (self.fileno, 1, 2):
            try:
                same = tty is not None and os.path.samestat(os.fstat(fd), tty)
            except OSError:
                same = False
            if same or fd == self.fileno:
                os.dup2(quiet if fd == self.fileno else null, fd)
        backstop = threading.Timer(BACKSTOP_S, os._exit, (HANGUP_EXIT,))
        backstop.daemon = True
        backstop.start()
        self._post_exit(HANGUP_EXIT, reason)
