"""A real Prometheus (Debian's package) on a free 127.0.0.1 port, in a temp dir, for tests."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from pathlib import Path

from tests.servers import _running, free_port


@contextlib.contextmanager
def prometheus(
    tmp: Path,
    data_dir: Path | None = None,
    extra_args: tuple[str, ...] = (),
    scrape_self: bool = True,
    targets: tuple[str, ...] = (),
    rule_files: tuple[str, ...] = (),
):
    """Yields the base URL once /-/ready answers (the port opens before the TSDB is ready);
    scrapes itself every second unless scrape_self is False. `data_dir` may hold blocks
    written by `promtool tsdb create-blocks-from` (kept for ten years, so old history stays).
    `targets` (HOST:PORT) are scraped every second too, as job "obs-tui"; `rule_files` are
    evaluated every second."""
    port = free_port()
    config = tmp / "prometheus.yml"
    scrape = (
        (f"scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        if scrape_self
        else ""
    )
    if targets:
        scrape = scrape or "scrape_configs:\n"
        scrape += (
            f"  - job_name: obs-tui\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
    rules = "".join(f"  - {path!r}\n" for path in rule_files)
    rules = f"rule_files:\n{rules}" if rules else ""
    config.write_text(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rules}{scrape}")
    args = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir or tmp / 'data'}",
        "--storage.tsdb.retention.time=10y",
        f"--web.listen-address=127.0.0.1:{port}",
        *extra_args,
    ]
    url = f"http://127.0.0.1:{port}"
    with _running(args, port, tmp):
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("prometheus did not become ready in 30 s")
            time.sleep(0.1)
        yield url
