"""A real Prometheus (Debian's package) on a free 127.0.0.1 port, in a temp dir, for tests."""

from __future__ import annotations

import contextlib
import time
import urllib.request
from pathlib import Path

from tests.servers import _running, free_port


@contextlib.contextmanager
def prometheus(tmp: Path):
    """Yields the base URL once /-/ready answers (the port opens before the TSDB is ready);
    scrapes itself every second."""
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n"
                      f"  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    args = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}"]
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
