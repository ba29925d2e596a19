"""Running ember's Discord bot against the fake Discord and the fake Anthropic API."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bots.discord.app import make_client
from bots.discord.client import EmberClient
from core.chat import OpenGate
from core.config import OPUS_3, Settings, settings_from_dict
from core.runtime import Runtime, open_runtime
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.anthropic_server import Recorded as AnthropicRecorded
from tests.fakes.discord_server import FakeChannel, FakeDiscord, Json, Recorded, run_client

SAFETY = 10.0  # seconds: a safety net for waits, never an expectation

POST = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
DELETE = "DELETE /channels/{channel_id}/messages/{message_id}"
TYPING = "POST /channels/{channel_id}/typing"
CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
FOLLOWUP = "POST /webhooks/{application_id}/{token}"
EDIT_ORIGINAL = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
# Interaction callbacks that carry a message (4: a message, 7: update the pressed one).
MESSAGE_CALLBACKS = (4, 7)


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
        """The requests ember made that match `predicate`, once `count` have come. A reply's
        records are written while its buttons go on: they are written too when this returns."""
        seen = await self.discord.wait_for(predicate, count=count, timeout=timeout)
        await self.runtime.engine.records_written()
        return seen


@asynccontextmanager
async def running_ember(
    discord: FakeDiscord, anthropic: FakeAnthropic, settings: Settings, *, access: Any = None
) -> AsyncIterator[Ember]:
    """ember's runtime and Discord client, connected and ready; closed afterwards."""
    # The provider reads its key from the environment when the first request is routed.
    with patch.dict(os.environ, {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings, access=access or OpenGate()) as runtime:
            client = make_client(runtime, guild_ready_timeout=0.05)
            async with run_client(client, discord):
                yield Ember(client, runtime, discord, anthropic)
    assert_no_pings(discord.requests)


def message_bodies(requests: list[Recorded]) -> list[tuple[str, Any]]:
    """(route, message body) of every request that creates or edits a message."""
    found: list[tuple[str, Any]] = []
    for r in requests:
        if r.route in (POST, EDIT, FOLLOWUP, EDIT_ORIGINAL):
            found.append((r.route, r.body))
        elif r.route == CALLBACK and isinstance(r.body, dict) and r.body.get("type") in MESSAGE_CALLBACKS:
            found.append((r.route, r.body.get("data") or {}))
    return found


def assert_no_pings(requests: list[Recorded]) -> None:
    """Every message ember creates or edits says `allowed_mentions: {"parse": []}`."""
    wrong = [
        (route, body) for route, body in message_bodies(requests) if body.get("allowed_mentions") != NO_PINGS
    ]
    assert not wrong, f"messages written without allowed_mentions none: {wrong!r}"


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


NO_PINGS = {"parse": []}


def bot_messages(discord: FakeDiscord, channel: FakeChannel | int) -> list[Json]:
    """What ember has posted in a channel (as the fake stores it now), oldest first."""
    return [m for m in discord.history(channel) if m["author"]["id"] == str(discord.bot.id)]


def writes_to(requests: list[Recorded], message_id: int | str) -> list[Recorded]:
    """The successful edits of one message."""
    path = f"/messages/{message_id}"
    return [r for r in requests if r.route == EDIT and r.path.endswith(path) and r.status < 300]


def model_text(request: AnthropicRecorded) -> str:
    """Every text block the model was sent (messages and system), joined by newlines."""
    body = request.body
    texts = [b["text"] for b in body.get("system") or [] if isinstance(b, dict)]
    for message in body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [b["text"] for b in blocks if b.get("type") == "text"]
    return "\n".join(texts)


def turns(request: AnthropicRecorded) -> list[tuple[str, str]]:
    """(role, text) per message the model was sent."""
    result = []
    for message in request.body["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        result.append((message["role"], "\n".join(b["text"] for b in blocks if b.get("type") == "text")))
    return result
