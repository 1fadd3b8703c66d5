"""Screenshots of the real console, with real data from the real engine: `make screenshots`.

    python -m obs_tui.tui.screenshots screenshots/ [--frames N] [--fake]

Writes main-160x48.svg, main-80x24.svg, help-80x24.svg, detail-host-power-100x32.svg,
detail-process-100x32.svg, detail-service-100x32.svg, theme-light-160x48.svg,
theme-mono-80x24.svg, carbon-80x24.svg, replay-160x48.svg, compare-160x48.svg, compare-80x24.svg
and read-only-160x48.svg. The engine is the one
`obs-tui demo` opens: the demo's shop under its load generator, its agent and its Prometheus
with three SLOs (obs_tui/demo.py), so every pane shows what a user would see (Requests needs
root for the probes); the read-only shot is the console reading that Prometheus. --fake uses
the deterministic test frames.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from obs_tui.tui.app import ObsApp


def real_engine(config_path: str | None = None, read_only: bool = False, history: Path | None = None):
    """The demo's engine; with `history`, recording there as a console does (replay, compare)."""
    try:
        from dataclasses import replace

        from obs_tui.config import load
        from obs_tui.pipeline import make_engine

        config = load(config_path)
        engine = make_engine(config, read_only=read_only)
        if history is not None:
            from obs_tui.history.wiring import attach

            attach(engine, replace(config, history={**config.history, "dir": str(history)}), "console", print)
        return engine
    except Exception as exc:  # fall back to the processes source alone, and say so
        print(f"screenshots: full engine unavailable ({exc}); processes only", file=sys.stderr)
        from obs_tui.engine import Engine
        from obs_tui.pipeline import stages
        from obs_tui.sources.procs import ProcsSource

        return Engine(stages([ProcsSource()]), interval=1.0)


def fake_engine():
    from tests.fake_frames import FakeEngine

    return FakeEngine(interval=0.2)


def _slo_burning(frame) -> bool:
    return frame is not None and any(rate for slo in frame.slo for _, rate in slo.burn_rates[:1])


async def shoot_read_only(out: Path, frames: int, config_path: str) -> Path:
    """The console in read-only mode over the demo's Prometheus."""
    app = ObsApp(lambda: real_engine(config_path, read_only=True), theme_name="dark", read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(300):  # until a second fetch gives rates (refresh_s = 5 in the demo)
            red = app.frame.red if app.frame is not None else None
            if app.frames >= frames and red is not None and any(s.rps for s in red.services):
                break
            await pilot.pause(0.1)
        await pilot.pause(0.2)
        app.save_screenshot(filename="read-only-160x48.svg", path=str(out))
        await pilot.press("q")
    return out / "read-only-160x48.svg"


async def shoot(out: Path, frames: int, fake: bool, config_path: str | None = None) -> list[Path]:
    history = Path(config_path).parent / "history" if config_path else None
    app = ObsApp(
        fake_engine if fake else lambda: real_engine(config_path, history=history), theme_name="dark"
    )
    written: list[Path] = []

    async with app.run_test(size=(160, 48)) as pilot:

        async def settle() -> None:
            await pilot.pause()
            await pilot.pause(0.05)

        async def save(name: str) -> None:
            await settle()
            path = out / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(out))
            written.append(path)

        # `frames` real frames, and (for up to a minute more) the demo's errors reaching the SLO
        # pane: its Prometheus needs two scrapes of a 5xx series before a rate shows.
        for i in range(int(frames * 15) + 700):
            if app.frames >= frames and (fake or i > frames * 15 + 600 or _slo_burning(app.frame)):
                break
            await pilot.pause(0.1)
        await save("main-160x48")
        await pilot.resize_terminal(80, 24)
        await save("main-80x24")
        await pilot.press("f1")
        await save("help-80x24")
        await pilot.press("escape")
        await pilot.resize_terminal(100, 32)
        await settle()
        await pilot.press("enter")  # the pinned Idle row: the host's power and how it was made
        await save("detail-host-power-100x32")
        await pilot.press("escape")
        await pilot.press("down", "enter")
        await save("detail-process-100x32")
        await pilot.press("escape")
        await pilot.press("up")
        await pilot.press("tab")
        await pilot.press("enter")
        await save("detail-service-100x32")
        await pilot.press("escape")
        await pilot.press("shift+tab")
        await pilot.resize_terminal(160, 48)
        await pilot.press("T")
        await save("theme-light-160x48")
        await pilot.resize_terminal(80, 24)
        await pilot.press("T")
        await save("theme-mono-80x24")
        await pilot.press("T")  # back to dark
        await pilot.press("4")  # the Carbon pane, maximised
        await save("carbon-80x24")
        await pilot.press("4")  # back to every pane
        # The flight recorder: a few ticks back, then the change columns against a moment
        # before that (the console's own recording of this run).
        await pilot.resize_terminal(160, 48)
        await pilot.press(*["left_square_bracket"] * 3)
        await pilot.pause(1.5)
        await save("replay-160x48")
        await pilot.press("C")
        await pilot.press("minus", "3", "0", "s", "enter")
        await pilot.pause(2.0)
        await save("compare-160x48")
        await pilot.resize_terminal(80, 24)
        await save("compare-80x24")
        await pilot.press("q")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m obs_tui.tui.screenshots")
    parser.add_argument("out", nargs="?", default="screenshots")
    parser.add_argument("--frames", type=int, default=15, help="frames to collect first (15)")
    parser.add_argument("--fake", action="store_true", help="deterministic test frames")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.fake:
        written = asyncio.run(shoot(out, args.frames, True))
    else:
        from obs_tui import demo

        with demo.running(notice=lambda line: print(line, file=sys.stderr)) as running:
            config = str(running.config_path)
            written = asyncio.run(shoot(out, args.frames, False, config))
            written.append(asyncio.run(shoot_read_only(out, 5, config)))
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
