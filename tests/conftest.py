"""Suite-wide fixtures."""

from __future__ import annotations

import pytest

from ponder.models.openai_compat import close_clients


@pytest.fixture(autouse=True)
def _private_run_store(tmp_path_factory, monkeypatch):
    """Every run is journaled; keep each test's runs out of the user's ~/.ponder."""
    monkeypatch.setenv("PONDER_HOME", str(tmp_path_factory.mktemp("ponder-home")))


@pytest.fixture(autouse=True)
async def _close_pooled_http_sessions():
    """Each test runs in its own event loop; close the pooled aiohttp sessions it opened."""
    yield
    await close_clients()
