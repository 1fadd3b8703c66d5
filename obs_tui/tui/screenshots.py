"""Screenshots of the real console, with real data from the real engine: `make screenshots`.

    python -m obs_tui.tui.screenshots screenshots/ [--frames N] [--fake]

Writes main-160x48.svg, main-80x24.svg, help-80x24.svg, detail-host-power-100x32.svg,
detail-process-100x32.svg, detail-service-100x32.svg, theme-light-160x48.svg, theme-mono-80x24.svg
and carbon-80x24.svg. The engine is the one `obs-tui` builds (processes, plus eBPF RED when
running as root), watching real servers
(the test suite's nginx and Python server) under real traffic from a client thread, so the
Requests pane shows what a user would see; --fake uses the deterministic test frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from obs_tui.tui.app import ObsApp


def real_engine():
    try:
        from obs_tui.cli import make_engine
        from obs_tui.config import load

        return make_engine(load(None), read_only=False)
    except Exception as exc:  # fall back to the processes source alone, and say so
        print(f"screenshots: full engine unavailable ({exc}); processes only", file=sys.stderr)
        from obs_tui.engine import Engine
        from obs_tui.sources.procs import ProcsSource

        return Engine([ProcsSource()], interval=1.0)


def fake_engine():
    from tests.fake_frames import FakeEngine

    return FakeEngine(interval=0.2)


async def shoot(out: Path, frames: int, fake: bool) -> list[Path]:
    app = ObsApp(fake_engine if fake else real_engine, theme_name="dark")
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

        for _ in range(int(frames * 15) + 100):  # wait for `frames` real frames
            if app.frames >= frames:
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
    from tests.servers import traffic  # real nginx and Python servers under real requests

    with contextlib.nullcontext() if args.fake else traffic():
        written = asyncio.run(shoot(out, args.frames, args.fake))
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
