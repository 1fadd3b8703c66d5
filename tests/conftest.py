"""The RED probe as a fixture: one per module (`red`), or one per test (`fresh_red`)."""

import os
import time

import pytest

# Screens show wall-clock times (the SLO pane's "data as of"): one zone for every run.
os.environ["TZ"] = "UTC"
time.tzset()


def _red_source():
    from obs_tui.sources.red import RedSource

    source = RedSource(routes=["/users/{id}"])
    cap = source.available()
    if not cap.ok:
        pytest.skip(f"RED probe unavailable: {cap.reason}")
    yield source
    source.close()


@pytest.fixture(scope="module")
def red():
    yield from _red_source()


@pytest.fixture
def fresh_red():
    """Loaded for one test: its maps start empty, so what other tests or other servers on
    the host sent earlier (thousands of paths can fill the probe's tables, by design) cannot
    decide whether this test's requests fit."""
    yield from _red_source()
