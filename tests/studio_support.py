"""The essay studio's test helpers: an essay that tempts every escaping mistake, settings for a
studio over the fake Anthropic API, and a clock tests move."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

from core.chat import OpenGate
from core.config import OPUS_3, Settings, settings_from_dict
from core.runtime import Runtime, open_runtime
from tests.fakes.anthropic_server import FakeAnthropic, Reply

# What the model writes: a title line, markup of three kinds, pings, a masked link, quotes,
# accents, an emoji, trailing spaces and a tab. Published, it must stay exactly this.
ESSAY = (
    "# On Keeping a Lamp Lit\n\n"
    'Some say <script>alert("x")</script> & others say <b>bold</b> things; @everyone listens, '
    "<@123> and <!channel> too.  \n\n"
    "A [masked link](https://elsewhere.example) and *emphasis*, _underscores_ and `code`.\t\n\n"
    "Été, naïveté, 🌿 — the end."
)
CHUNKS = [ESSAY[i : i + 40] for i in range(0, len(ESSAY), 40)]


def essay_reply() -> Reply:
    return Reply.text(CHUNKS)


def studio_settings(tmp_path: Path, anthropic: FakeAnthropic, **sections: Any) -> Settings:
    opus = {"display_name": "Claude Opus 3", "backends": [{"provider": "anthropic", "model": OPUS_3}]}
    studio = {"enabled": True, **sections.pop("studio", {})}
    database = sections.pop("database", None) or {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"}
    return settings_from_dict(
        {
            "database": database,
            "providers": {"anthropic": {"base_url": anthropic.url}},
            "models": {"opus-3": opus, **sections.pop("models", {})},
            "studio": studio,
            **sections,
        }
    )


@asynccontextmanager
async def studio_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    with patch.dict(os.environ, {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings, access=OpenGate()) as runtime:
            yield runtime
