"""Which store a command uses, and the recorder on an engine: the glue between the command
line and the history package."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obs_tui.history.recorder import Recorder
from obs_tui.history.store import Store, StoreError, default_dir

# the oldest generation is collected after this many collections of the middle one (Python's
# default: 10)
FULL_PASS_EVERY = 100


def history_dir(config: Any) -> Path:
    """--history DIR, else `[history] dir`, else the default for this user."""
    return Path(config.history["dir"]) if config.history.get("dir") else default_dir()


def settle_heap() -> None:
    """Put the objects that exist now out of the garbage collector's sight. The recorder
    allocates thousands of rows a frame, and a replay's seek tens of thousands (a decoded
    chunk), so the collector's full passes run in their threads, and each walks every object
    the process has, most of them the engine's (probes, compiled programs, config) and, in
    the console, the screens' widgets, which live until exit: frozen once the engine is
    built, they cost those passes nothing. What is left for those passes to walk (a
    console's decoded chunks and sparklines, the open chunk) still costs tens of
    milliseconds a pass, and Python makes one every second or two of replaying: made ten
    times rarer (FULL_PASS_EVERY), a reference cycle that became garbage lives that much
    longer instead."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_PASS_EVERY)


def attach(engine: Any, config: Any, role: str, notice: Callable[[str], None]) -> None:
    """Open the store (before root is dropped: it is root's file) and record the engine's
    frames into it. A console finding another obs-tui recording there (the agent) reads that
    store instead of recording the same host twice. The agent fails on a store it cannot
    open; a console goes on without history and says why (engine.history_note)."""
    directory = history_dir(config)
    try:
        store = Store(directory, writer=True)
    except StoreError as exc:
        if role == "agent":
            raise
        engine.history_note = f"history off: {exc}"
        notice(engine.history_note)
        return
    engine.history = store
    settle_heap()  # whether this process records or only replays another's recording
    if role == "console" and not store.recording:
        writer = store.writer() or {}
        engine.history_note = f"history: reading the {writer.get('role', 'other')}'s recording"
        return
    engine.sinks.append(
        Recorder(
            store,
            role,
            max_age_s=config.history["max_age_days"] * 86400,
            max_bytes=int(config.history["max_size_mb"] * 1024 * 1024),
            notice=notice,
        )
    )
    engine.history_note = "" if store.recording else f"history: waiting for the lock on {directory}"
