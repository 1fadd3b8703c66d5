#!/usr/bin/env python3
"""The flight recorder's costs, side by side with atop's raw log (issue 13's targets).

Under one load, for --seconds at a 1 s interval:
  - the host topped up to --procs processes (idle sleepers), --services HTTP servers
    (tests/servers/py_server.py, each with its own name) answering --rps requests a second
    in total (mixed routes, some 5xx, some slow);
  - obs-tui's real engine (eBPF RED, procs, power, carbon) ticking on whole seconds with the
    recorder as a sink, writing to a fresh store; and `atop -w FILE 1` at the same time.

Reported:
  storage   bytes per frame (the chunks, and the SQLite file on disk) and per day at 1 s,
            against atop's raw log per day on the same host over the same seconds;
  cost      the recorder's CPU time (thread CPU time inside the sink: the document, the delta,
            compression and the writes) as % of one core;
  seek      a 24 h store is built from the recorded chunks (the same frames shifted in time);
            then for --seek random seconds of those 24 h: Timeline.frame_at alone, and in the
            console (Textual Pilot) from `g`, the typed time and Enter until the screen update
            that shows the frame is made, with the CPU time that took (all threads, and the
            UI thread's alone: what the console adds to the reading); and Timeline.frame_at
            over the same 24 h written by the previous column codec (cols+zstd/1). Median and
            worst, in ms.
  floors    what no change to the decoding or the shredding can go under in this design:
            reading, decompressing and parsing a seek's chunk; compressing the chunk's texts.
Beside each figure, the same recorded frames encoded again by the previous codecs, and with
--baseline-ref REV by this codec's recorder as it was at git revision REV (its columns.py),
so a change to the recorder's cost is measured against its own baseline in the same run.

Figures are only meaningful on a quiet host; a shared machine inflates the CPU and seek rows.
Run from the repo root as root:  .venv/bin/python bench/history.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import zstandard  # noqa: E402
from ui_cost import Sleepers, count_processes  # noqa: E402

from obs_tui.history import codec, columns  # noqa: E402
from obs_tui.history.document import frame_from_json  # noqa: E402
from obs_tui.history.recorder import Recorder  # noqa: E402
from obs_tui.history.store import Store  # noqa: E402
from obs_tui.history.timeline import Timeline, label_time  # noqa: E402
from obs_tui.history.wiring import settle_heap  # noqa: E402
from obs_tui.snapshot import frame_to_json  # noqa: E402
from tests import servers  # noqa: E402

DAY = 86400
PATHS = ["/users/{}", "/orders/{}", "/status/500", "/sleep/5", "/health"]


class TimedRecorder:
    """The recorder with the thread CPU time spent inside it counted."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.cpu_s = 0.0
        self.calls = 0

    def __call__(self, frame) -> None:
        t0 = time.thread_time()
        self.recorder(frame)
        self.cpu_s += time.thread_time() - t0
        self.calls += 1

    def close(self) -> None:
        self.recorder.close()


def load(ports: list[int], rps: float) -> None:
    """The traffic, in a process of its own until it is ended: in the bench's process its
    Python would take turns with the engine's and the recorder's on one interpreter lock,
    and each turn taken back costs the recorder's thread its caches (an agent has no load
    generator inside it)."""
    stop = threading.Event()
    threads = [threading.Thread(target=traffic, args=(ports, rps / 4, stop), daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def traffic(ports: list[int], rps: float, stop: threading.Event) -> None:
    """Requests spread over the services, one connection each (what most clients do)."""
    rng = random.Random(1)
    gap = 1.0 / rps
    due = time.monotonic()
    while not stop.is_set():
        port = rng.choice(ports)
        path = rng.choices(PATHS, weights=(50, 30, 3, 7, 10))[0].format(rng.randrange(1000))
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read()
        due += gap
        time.sleep(max(due - time.monotonic(), 0))


def record(args, store_dir: Path, atop_file: Path) -> dict:
    from obs_tui.config import parse
    from obs_tui.pipeline import make_engine

    config = parse('interval = 1.0\n[red]\nroutes = ["/users/{id}", "/orders/{id}"]\n')
    engine = make_engine(config, read_only=False, with_slos=False)
    store = Store(store_dir, writer=True)
    settle_heap()  # as history.wiring.attach does for the agent and the console
    timed = TimedRecorder(Recorder(store, "bench"))
    engine.sinks.append(timed)
    atop = subprocess.Popen(
        ["atop", "-w", str(atop_file), "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    started = time.time()
    print("# recording", file=sys.stderr, flush=True)
    try:
        while time.time() - started < args.seconds:
            engine.tick()
            time.sleep(1.0 - time.time() % 1.0)
    finally:
        wall = time.time() - started
        atop.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            atop.wait(10)
        if atop.poll() is None:
            atop.kill()
        timed.close()
        engine.close()
    chunks = store.chunks()
    frames = sum(c.frames for c in chunks)
    chunk_bytes = sum(c.size for c in chunks)
    with store._lock:  # as retention leaves it after each chunk: the freed pages given back
        store.conn.execute("PRAGMA incremental_vacuum")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    file_bytes = store.size_bytes()
    last_doc = store.decode(chunks[-1].id)[-1][1]
    store.close()
    atop_bytes = atop_file.stat().st_size if atop_file.exists() else 0
    return {
        "seconds": round(wall, 1),
        "frames": frames,
        "processes": len(last_doc.get("processes") or ()),
        "services": len(((last_doc.get("red") or {}).get("services")) or ()),
        "frame_json_bytes": len(json.dumps(last_doc)),
        "chunk_bytes_per_frame": round(chunk_bytes / frames, 1),
        "file_bytes_per_frame": round(file_bytes / frames, 1),
        "mb_per_day": round(chunk_bytes / frames * DAY / 1e6, 1),
        "file_mb_per_day": round(file_bytes / frames * DAY / 1e6, 1),
        "atop_mb_per_day": round(atop_bytes / wall * DAY / 1e6, 1) if atop_bytes else None,
        "recorder_cpu_pct": round(100 * timed.cpu_s / wall, 3),
        "recorder_ms_per_frame": round(1000 * timed.cpu_s / max(timed.calls, 1), 2),
    }


def previous_store(store_dir: Path, out_dir: Path) -> None:
    """The recorded frames again, in chunks of a minute written by the previous column codec
    (cols+zstd/1): the seek baseline."""
    source = Store(store_dir)
    frames = [frame_from_json(doc, t) for t, doc in source.frames(0, 2e9)]
    source.close()
    store = Store(out_dir, writer=True)
    with store._lock:
        for i in range(0, len(frames), 60):
            part = frames[i : i + 60]
            encoder = columns.ChunkEncoder(columns.V1)
            for frame in part:
                encoder.add(frame)
            store.conn.execute(
                "INSERT INTO chunks (start, end, frames, interval, schema, codec, data) "
                "VALUES (?, ?, ?, 1.0, 1, ?, ?)",
                (part[0].taken_at, part[-1].taken_at, len(part), columns.V1, encoder.encode(final=True)),
            )
    store.close()


def fill_day(source_dir: Path, day_dir: Path) -> tuple[float, float]:
    """A store holding 24 h: the recorded chunks again and again, shifted in time."""
    source = Store(source_dir)
    chunks = [
        source.conn.execute("SELECT data, codec FROM chunks WHERE id=?", (c.id,)).fetchone()
        for c in source.chunks()
        if c.frames > 1
    ]
    source.close()
    store = Store(day_dir, writer=True)
    end = time.time()
    start = end - DAY
    at, i = start, 0
    unzip = zstandard.ZstdDecompressor()
    # the day's size is not measured: compressed fast (decompression costs the same)
    zipper = zstandard.ZstdCompressor(level=columns.FLUSH_LEVEL, write_checksum=True)
    bodies = [(json.loads(unzip.decompress(data)), name) for data, name in chunks]  # columns.ChunkEncoder
    with store._lock:
        store.conn.execute("BEGIN")
        while at < end:
            body, name = bodies[i % len(bodies)]
            first = body["t"][0]
            times = [at + t - first for t in body["t"]]
            data = zipper.compress(json.dumps({**body, "t": times}).encode())
            store.conn.execute(
                "INSERT INTO chunks (start, end, frames, interval, schema, codec, data) "
                "VALUES (?, ?, ?, 1.0, 1, ?, ?)",
                (times[0], times[-1], len(times), name, data),
            )
            at = times[-1] + 1.0
            i += 1
        store.conn.execute("COMMIT")
    store.close()
    return start, end


def recorder_at(ref: str, tmp: Path):
    """history/columns.py as it was at git revision `ref`, imported beside today's (the rest
    of obs_tui is today's: the Frame it reads must not have changed shape since)."""
    import importlib.util

    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{ref}:obs_tui/history/columns.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / "columns_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("columns_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def offline(store_dir: Path, baseline=None) -> dict:
    """The recorded frames encoded again, by this codec, by the column codec before it
    (cols+zstd/1) and by the one before that (jsondelta, which built the whole document and
    its delta in Python), in chunks of a minute as the recorder writes them (the open chunk
    written every 10 s, then once more when it closes): bytes and thread CPU time per frame,
    same frames, same run, each chunk by each codec in turn, three times. The frames are read
    back from the store (floats rounded as the document holds them), then put out of the
    garbage collector's sight as an agent's heap is (settle_heap): else each of its full
    passes walks all of them, which no recorder has to carry."""
    store = Store(store_dir)
    frames = [frame_from_json(doc, t) for t, doc in store.frames(0, 2e9)]
    store.close()
    settle_heap()
    codecs = [("cols", columns.CODEC), ("cols1", columns.V1), ("jsondelta", "")]
    if baseline is not None:
        codecs.append(("baseline", columns.CODEC))
    size = dict.fromkeys([name for name, _ in codecs], 0)
    cpu = dict.fromkeys(size, 0.0)
    zstd_cpu = 0.0
    flush_cpu = dict.fromkeys(size, 0.0)  # encode() of the open chunk, every 10 s
    final_cpu = dict.fromkeys(size, 0.0)  # encode(final=True), once a chunk
    for _ in range(3):  # each chunk by each codec in turn: a shared host's load falls on all alike
        for i in range(0, len(frames), 60):
            for name, codec_name in codecs:
                t0 = time.thread_time()
                if codec_name:
                    module = baseline if name == "baseline" else columns
                    encoder = module.ChunkEncoder(codec_name)
                    for k, frame in enumerate(frames[i : i + 60], 1):
                        encoder.add(frame)
                        if k % 10 == 0:
                            f0 = time.thread_time()
                            encoder.encode()
                            flush_cpu[name] += time.thread_time() - f0
                    f0 = time.thread_time()
                    data = encoder.encode(final=True)
                    final_cpu[name] += time.thread_time() - f0
                    if name == "cols":  # the floor: compressing texts of the same sizes, nothing else
                        d0 = time.thread_time()
                        text = zstandard.ZstdDecompressor().decompress(data)
                        z0 = time.thread_time()
                        for k in range(10, len(frames[i : i + 60]), 10):
                            flush = zstandard.ZstdCompressor(level=columns.FLUSH_LEVEL, write_checksum=True)
                            flush.compress(text[: len(text) * k // 60])
                        zstandard.ZstdCompressor(level=columns.LEVEL, write_checksum=True).compress(text)
                        z1 = time.thread_time()
                        zstd_cpu += z1 - z0
                        t0 += z1 - d0  # not the codec's own time
                else:
                    old = codec.ChunkEncoder()
                    for frame in frames[i : i + 60]:
                        old.add(frame.taken_at, frame_to_json(frame))
                    data = old.encode()
                cpu[name] += time.thread_time() - t0
                size[name] += len(data)
    out = {
        "zstd_ms_per_frame": round(1000 * zstd_cpu / 3 / len(frames), 2),
        "flush_ms_per_frame": round(1000 * flush_cpu["cols"] / 3 / len(frames), 2),
        "final_ms_per_frame": round(1000 * final_cpu["cols"] / 3 / len(frames), 2),
    }
    for name in size:
        out[f"{name}_bytes_per_frame"] = round(size[name] / 3 / len(frames), 1)
        out[f"{name}_ms_per_frame"] = round(1000 * cpu[name] / 3 / len(frames), 2)
    return out


def _targets(start: float, end: float, count: int) -> list[float]:
    rng = random.Random(2)
    return [rng.uniform(start + 60, end - 60) for _ in range(count)]


def _frame_at_ms(store: Store, targets: list[float]) -> list[float]:
    timeline = Timeline(store)
    alone = []
    for t in targets:
        t0 = time.perf_counter()
        timeline.frame_at(t)
        alone.append(1000 * (time.perf_counter() - t0))
    return alone


def seek_previous(day_dir: Path, start: float, end: float, count: int) -> dict:
    """Timeline.frame_at over the same 24 h written by the previous column codec."""
    store = Store(day_dir)
    alone = _frame_at_ms(store, _targets(start, end, count))
    store.close()
    return {
        "timeline1_ms_median": round(statistics.median(alone), 1),
        "timeline1_ms_p95": round(_p95(alone), 1),
        "timeline1_ms_max": round(max(alone), 1),
    }


def _read_parse_ms(store: Store, targets: list[float]) -> list[float]:
    """The floor of a seek in this design: the target's chunk read from SQLite, decompressed
    and parsed as JSON, nothing decoded."""
    timeline = Timeline(store)
    unzip = zstandard.ZstdDecompressor()
    out = []
    for t in targets:
        chunk = timeline.chunks()[timeline._chunk_at(t) or 0]
        t0 = time.perf_counter()
        (data,) = store.conn.execute("SELECT data FROM chunks WHERE id=?", (chunk.id,)).fetchone()
        json.loads(unzip.decompress(data))
        out.append(1000 * (time.perf_counter() - t0))
    return out


def seek(day_dir: Path, start: float, end: float, count: int) -> dict:
    targets = _targets(start, end, count)
    store = Store(day_dir)
    floor = _read_parse_ms(store, targets)
    alone = _frame_at_ms(store, targets)
    console, console_cpu, console_ui = asyncio.run(_seek_in_console(store, targets))
    store.close()
    return {
        "read_parse_ms_median": round(statistics.median(floor), 1),
        "read_parse_ms_p95": round(_p95(floor), 1),
        "read_parse_ms_max": round(max(floor), 1),
        "timeline_ms_median": round(statistics.median(alone), 1),
        "timeline_ms_p95": round(_p95(alone), 1),
        "timeline_ms_max": round(max(alone), 1),
        "console_ms_median": round(statistics.median(console), 1),
        "console_ms_p95": round(_p95(console), 1),
        "console_ms_max": round(max(console), 1),
        "console_cpu_ms_median": round(statistics.median(console_cpu), 1),
        "console_cpu_ms_max": round(max(console_cpu), 1),
        "console_ui_cpu_ms_median": round(statistics.median(console_ui), 1),
        "console_ui_cpu_ms_max": round(max(console_ui), 1),
    }


def _p95(values: list[float]) -> float:
    return sorted(values)[min(int(0.95 * len(values)), len(values) - 1)]


async def _seek_in_console(
    store: Store, targets: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """From Enter after `g` and a typed time until the screen update that shows that frame
    is made (the compositor's update of the panes, turned into the terminal's bytes as a real
    terminal's driver would: a headless app skips that step). Not until the process is idle
    (Pilot.pause): the sparklines' history is read after the frame is drawn, on purpose.
    Enter is given to the app as the terminal's driver gives a key, and the wait is for that
    update, not a poll: Pilot's press and pause make every widget process a callback each
    time, work on the UI thread a terminal does not cause, which would share the CPU with
    the seek. Also the CPU time over the same span of the process (every thread: the seek's
    reading and the UI's painting share one interpreter) and of the UI thread alone (what
    the console adds to the reading), figures a loaded host inflates less than the wall."""
    from textual import events

    from obs_tui.tui.app import ObsApp
    from tests.fake_frames import FakeEngine

    class Live(FakeEngine):
        history = store
        history_note = ""

    app = ObsApp(lambda: Live())
    wanted: list[float] = []
    drawn: list[float] = []
    cpu_drawn: list[float] = []
    ui_drawn: list[float] = []
    painted = asyncio.Event()
    display = app._display

    def timed_display(screen, renderable) -> None:
        display(screen, renderable)
        shown = app.frame
        if (
            renderable is not None
            and not app._batch_count
            and wanted
            and not drawn
            and app.replaying
            and shown is not None
            and abs(label_time(shown) - wanted[0]) < 2.5
        ):
            renderable.render_segments(app.console)
            drawn.append(time.perf_counter())
            cpu_drawn.append(time.process_time())
            ui_drawn.append(time.thread_time())  # this runs on the UI thread
            painted.set()

    app._display = timed_display  # type: ignore[method-assign]
    out, cpu, ui = [], [], []
    async with app.run_test(size=(160, 48)) as pilot:
        while app.live_frame is None:
            await pilot.pause(0.02)
        settle_heap()  # as history.wiring.attach does once the console's engine is built
        driver = app._driver
        assert driver is not None
        for t in targets:
            typed = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))
            await pilot.press("g", *typed)
            await pilot.pause(0.1)
            wanted[:], drawn[:], cpu_drawn[:], ui_drawn[:] = [int(t)], [], [], []
            painted.clear()
            enter = events.Key("enter", "\r")
            enter.set_sender(app)
            u0, c0, t0 = time.thread_time(), time.process_time(), time.perf_counter()  # from Enter
            driver.send_message(enter)
            try:
                await asyncio.wait_for(painted.wait(), 10)
            except TimeoutError:
                raise RuntimeError(
                    f"the console never showed {typed} (shows "
                    f"{app.frame and time.ctime(label_time(app.frame))})"
                ) from None
            out.append(1000 * (drawn[0] - t0))
            cpu.append(1000 * (cpu_drawn[0] - c0))
            ui.append(1000 * (ui_drawn[0] - u0))
            wanted.clear()
            await pilot.pause(0.5)  # the sparklines' history read, as a user would see it
    return out, cpu, ui


def report(r: dict) -> str:
    """The figures side by side with their baselines and targets."""

    def day(per_frame: float) -> str:
        return f"{per_frame * DAY / 1e6:8.0f} MB/day"

    def core(ms: float) -> str:
        return f"{ms:6.2f} ms/frame {ms / 10:6.2f} % of a core at 1 s"

    atop = r["atop_mb_per_day"]
    v1 = columns.V1
    lines = [
        f"# {r['frames']} frames, {r['processes']} processes, {r['services']} services; "
        f"one frame's document {r['frame_json_bytes'] / 1000:.0f} KB as JSON",
        "storage                                 bytes/frame",
        f"  obs-tui {columns.CODEC:<15} recorded   {r['chunk_bytes_per_frame']:8.0f} {day(r['chunk_bytes_per_frame'])}"
        f"   (SQLite file {r['file_bytes_per_frame']:.0f} B/frame, {r['file_mb_per_day']:.0f} MB/day)",
        f"  obs-tui {columns.CODEC:<15} same frames {r['cols_bytes_per_frame']:7.0f} {day(r['cols_bytes_per_frame'])}",
        f"  previous {v1:<14} same frames {r['cols1_bytes_per_frame']:7.0f} {day(r['cols1_bytes_per_frame'])}",
        f"  older jsondelta+zstd/4  same frames {r['jsondelta_bytes_per_frame']:7.0f} "
        f"{day(r['jsondelta_bytes_per_frame'])}",
        f"  atop -w FILE 1 (same seconds)                  {atop if atop is not None else '?':>8} MB/day",
        "  target                                    1200     100 MB/day, and no more than atop",
        "recorder CPU (thread time in the sink: shredding, deltas, zstd, SQLite)",
        f"  obs-tui recorded                 {core(r['recorder_ms_per_frame'])}",
        f"  obs-tui same frames, encode only {core(r['cols_ms_per_frame'])}",
        *(
            [
                f"  recorder at {r['baseline_ref']:<8} same frames, encode only {core(r['baseline_ms_per_frame'])}"
                f"   ({r['baseline_bytes_per_frame']:.0f} B/frame)"
            ]
            if "baseline_ms_per_frame" in r
            else []
        ),
        f"    of which encode() every 10 s   {core(r['flush_ms_per_frame'])}",
        f"    of which encode() at close     {core(r['final_ms_per_frame'])}",
        f"  floor: zstd alone, same sizes    {core(r['zstd_ms_per_frame'])}",
        f"  {v1} same frames, encode only {core(r['cols1_ms_per_frame'])}",
        f"  jsondelta+zstd/4 same frames, encode only {core(r['jsondelta_ms_per_frame'])}",
        "  target                             5.00 ms/frame   0.50 % of a core",
        "seek to a random second of 24 h       median      p95      max",
        f"  Timeline.frame_at             {r['timeline_ms_median']:8.0f} {r['timeline_ms_p95']:8.0f} "
        f"{r['timeline_ms_max']:8.0f} ms",
        f"  floor: read, unzip, parse     {r['read_parse_ms_median']:8.0f} {r['read_parse_ms_p95']:8.0f} "
        f"{r['read_parse_ms_max']:8.0f} ms   (the chunk's JSON, nothing decoded)",
        f"  Timeline.frame_at, {v1} {r['timeline1_ms_median']:6.0f} {r['timeline1_ms_p95']:8.0f} "
        f"{r['timeline1_ms_max']:8.0f} ms",
        f"  console, Enter to drawn       {r['console_ms_median']:8.0f} {r['console_ms_p95']:8.0f} "
        f"{r['console_ms_max']:8.0f} ms",
        f"  console, CPU of all threads   {r['console_cpu_ms_median']:8.0f}          "
        f"{r['console_cpu_ms_max']:8.0f} ms   (Enter to drawn)",
        f"  console, CPU of the UI thread {r['console_ui_cpu_ms_median']:8.0f}          "
        f"{r['console_ui_cpu_ms_max']:8.0f} ms   (what the console adds to the reading)",
        "  target                             200 ms, no multi-second outliers",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--procs", type=int, default=400)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--rps", type=float, default=200.0)
    parser.add_argument("--seek", type=int, default=20)
    parser.add_argument("--keep", metavar="DIR", help="copy the recorded store to DIR (to study it)")
    parser.add_argument(
        "--baseline-ref",
        metavar="REV",
        help="also encode the recorded frames with the recorder (history/columns.py) of git revision REV",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/history.py: run as root (the engine loads eBPF probes)", file=sys.stderr)
        return 2
    if not shutil.which("atop"):
        print("bench/history.py: atop is missing (scripts/setup.sh bench installs it)", file=sys.stderr)
        return 2
    if args.baseline_ref and (
        subprocess.run(
            ["git", "-C", str(REPO), "cat-file", "-e", f"{args.baseline_ref}:obs_tui/history/columns.py"],
            capture_output=True,
        ).returncode
        != 0
    ):
        print(
            f"bench/history.py: no history/columns.py at git revision {args.baseline_ref!r}", file=sys.stderr
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="obs-history-bench-"))
    sleepers = Sleepers()
    try:
        with contextlib.ExitStack() as stack:
            ports = [
                stack.enter_context(servers.python_server(tmp, name=f"svc-{i:02d}")).port
                for i in range(args.services)
            ]
            sleepers.top_up(args.procs)
            print(
                f"# {count_processes()} processes, {args.services} services, {args.rps:g} rps, "
                f"{args.seconds:g} s",
                flush=True,
            )
            loader = multiprocessing.get_context("spawn").Process(
                target=load, args=(ports, args.rps), daemon=True
            )
            loader.start()
            try:
                result = record(args, tmp / "store", tmp / "atop.raw")
            finally:
                loader.terminate()
                loader.join(10)
        if args.keep:
            shutil.copytree(tmp / "store", args.keep, dirs_exist_ok=True)
        print("# recorded; filling 24 h", file=sys.stderr, flush=True)
        start, end = fill_day(tmp / "store", tmp / "day")
        print("# seeking", file=sys.stderr, flush=True)
        result.update(seek(tmp / "day", start, end, args.seek))
        shutil.rmtree(tmp / "day")
        previous_store(tmp / "store", tmp / "store1")
        start, end = fill_day(tmp / "store1", tmp / "day1")
        result.update(seek_previous(tmp / "day1", start, end, args.seek))
        print("# re-encoding the recorded frames with the previous codec", file=sys.stderr, flush=True)
        baseline = recorder_at(args.baseline_ref, tmp) if args.baseline_ref else None
        result.update(offline(tmp / "store", baseline))
        if baseline is not None:
            result["baseline_ref"] = args.baseline_ref
        print(report(result))
        print(json.dumps(result, indent=2))
    finally:
        sleepers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
