"""Shared fixtures: loopback fakes of every network peer ember talks to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.anthropic_server import FakeAnthropic


# --- fake Anthropic --------------------------------------------------------------------
@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as fake:
        yield fake
