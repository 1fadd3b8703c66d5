"""Fixtures shared by the trust tests."""

import pytest


@pytest.fixture
def fresh_red():
    """A RED source of its own, loaded for one test: its maps start empty, so what other
    tests or other servers on the host sent earlier (thousands of paths can fill the
    probe's tables, by design) cannot decide whether this test's requests fit."""
    from obs_tui.sources.red import RedSource

    source = RedSource(routes=["/users/{id}"])
    cap = source.available()
    if not cap.ok:
        pytest.skip(f"RED probe unavailable: {cap.reason}")
    yield source
    source.close()
