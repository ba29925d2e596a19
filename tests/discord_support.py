"""Running ember's Discord bot against the fake Discord and the fake Anthropic API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.discord.client import EmberClient, make_client
from core.chat import OpenGate
from core.config import OPUS_3, Settings, settings_from_dict
from core.runtime import Runtime, open_runtime
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.discord_server import FakeDiscord, Recorded, run_client

SAFETY = 10.0  # seconds: a safety net for waits, never an expectation

POST = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
DELETE = "DELETE /channels/{channel_id}/messages/{message_id}"
TYPING = "POST /channels/{channel_id}/typing"
CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"


def ember_settings(
    tmp_path: Path, anthropic: FakeAnthropic, *, discord: dict[str, Any] | None = None, **sections: Any
) -> Settings:
    opus = {"display_name": "Claude Opus 3", "backends": [{"provider": "anthropic", "model": OPUS_3}]}
    return settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
            "providers": {"anthropic": {"base_url": anthropic.url}},
            "models": {"opus-3": opus},
            "discord": discord or {},
            **sections,
        }
    )


@dataclass
class Ember:
    client: EmberClient
    runtime: Runtime
    discord: FakeDiscord
    anthropic: FakeAnthropic

    async def wait(
        self, predicate: Callable[[Recorded], bool], *, count: int = 1, timeout: float = SAFETY
    ) -> list[Recorded]:
        return await self.discord.wait_for(predicate, count=count, timeout=timeout)


@asynccontextmanager
async def running_ember(
    discord: FakeDiscord, anthropic: FakeAnthropic, settings: Settings, *, access: Any = None
) -> AsyncIterator[Ember]:
    """ember's runtime and Discord client, connected and ready; closed afterwards."""
    async with open_runtime(settings, access=access or OpenGate()) as runtime:
        client = make_client(runtime, guild_ready_timeout=0.05)
        async with run_client(client, discord):
            yield Ember(client, runtime, discord, anthropic)


# ---------------------------------------------------------------- request predicates


def route(name: str) -> Callable[[Recorded], bool]:
    return lambda r: r.route == name


def posts_in(channel_id: int) -> Callable[[Recorded], bool]:
    return lambda r: r.route == POST and r.path == f"/channels/{channel_id}/messages"


def custom_ids(body: Any) -> list[str]:
    """Every button id in a message body's components."""
    if not isinstance(body, dict):
        return []
    return [c.get("custom_id", "") for row in body.get("components") or [] for c in row.get("components", [])]


def finished(r: Recorded) -> bool:
    """The edit that puts the finished reply's buttons on its last message."""
    return r.route == EDIT and any(":regen:" in c for c in custom_ids(r.body))


def message_writes(requests: list[Recorded]) -> list[Recorded]:
    return [r for r in requests if r.route in (POST, EDIT) and r.status < 300]
