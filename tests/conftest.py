"""Suite-wide fixtures."""

from __future__ import annotations

import pytest

from ponder.models.openai_compat import close_clients


@pytest.fixture(autouse=True)
async def _close_pooled_http_sessions():
    """Each test runs in its own event loop; close the pooled aiohttp sessions it opened."""
    yield
    await close_clients()
