"""Running ember's Slack bot — the real slack-bolt AsyncApp, in Socket Mode or HTTP mode — against
the fake Slack and the fake Anthropic API.

    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        await ember.deliver(fake_slack.app_mention("C1", "U1", "hi"))
        await ember.wait(stream_stopped)
        await ember.idle()               # everything delivered so far is fully handled

`deliver`, `command` and `press` speak whichever mode the settings chose: a Socket Mode envelope
(returning once the app acked it) or a signed HTTP POST (asserting a 200).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic

from bots.slack.bot import SlackBot
from bots.slack.service import running
from core.chat import OpenGate
from core.chat.providers import SDKClient
from core.config import OPUS_3, Backend, Settings, settings_from_dict
from core.runtime import Runtime, open_runtime
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.slack_server import Call, FakeSlack, HttpReply

SAFETY = 10.0  # seconds: a safety net for waits, never an expectation
SIGNING_SECRET = "fake-signing-secret"

Json = dict[str, Any]


def slack_env(fake: FakeSlack) -> dict[str, str]:
    """The secrets `[slack]` names by default, as the environment would hold them."""
    return {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_APP_TOKEN": fake.app_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }


def ember_settings(
    tmp_path: Path,
    anthropic_fake: FakeAnthropic,
    fake: FakeSlack,
    *,
    slack: Mapping[str, Any] | None = None,
    **sections: Any,
) -> Settings:
    """Settings for one test: SQLite in `tmp_path`, the model on the fake Anthropic API and
    `[slack] api_base_url` on the fake Slack (plus `slack` overrides, e.g. {"mode": "http"})."""
    opus = {"display_name": "Claude Opus 3", "backends": [{"provider": "anthropic", "model": OPUS_3}]}
    return settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
            "providers": {"anthropic": {"base_url": anthropic_fake.url}},
            "models": {"opus-3": opus},
            "slack": {"api_base_url": fake.api_url, **(slack or {})},
            **sections,
        }
    )


def model_clients(anthropic_fake: FakeAnthropic) -> Callable[[Backend], SDKClient]:
    """The real anthropic SDK on the fake, with a test key (no environment needed)."""

    def build(backend: Backend) -> SDKClient:
        client = anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=anthropic_fake.url, max_retries=0)
        return SDKClient(client, backend.provider)

    return build


@dataclass
class Ember:
    bot: SlackBot
    runtime: Runtime
    slack: FakeSlack
    anthropic: FakeAnthropic
    mode: str
    url: str  # HTTP mode: the app's request URL; "" in Socket Mode

    async def deliver(self, event: Json, *, event_id: str | None = None, retry: int = 0) -> None:
        """Deliver an event as Slack does in this mode; `retry` > 0 is a redelivery (Socket Mode
        retry_attempt, HTTP X-Slack-Retry-Num) and should repeat the first delivery's event_id."""
        if self.mode == "socket":
            await self.slack.send_event(
                event, event_id=event_id, retry_attempt=retry, retry_reason="timeout" if retry else ""
            )
        else:
            reply = await self.post(self.slack.http_event(event, event_id=event_id), retry=retry)
            assert reply.status == 200, reply

    async def command(self, text: str, *, user_id: str = "U1", channel_id: str = "C1") -> None:
        """`/opus <text>` from `user_id` in `channel_id`; returns once acknowledged."""
        command = self.bot.settings.command
        if self.mode == "socket":
            await self.slack.send_slash_command(command, text, user_id=user_id, channel_id=channel_id)
        else:
            body = self.slack.http_slash_command(command, text, user_id=user_id, channel_id=channel_id)
            reply = await self.post(body)
            assert reply.status == 200, reply

    async def press(self, payload: Json) -> None:
        """An interactive payload (e.g. `fake.button_press(...)`); returns once acknowledged."""
        if self.mode == "socket":
            await self.slack.send_interaction(payload)
        else:
            reply = await self.post(self.slack.http_interaction(payload))
            assert reply.status == 200, reply

    async def post(self, body: Any, *, retry: int = 0, forge: bool = False, stale: bool = False) -> HttpReply:
        """HTTP mode only: a signed POST to the app (`forge`, `stale` for refused requests)."""
        assert self.url, "post() is for HTTP mode"
        return await self.slack.post_signed(
            self.url, body, SIGNING_SECRET, forge=forge, stale=stale, retry_num=retry or None
        )

    async def wait(
        self, predicate: Callable[[Call], bool], *, count: int = 1, timeout: float = SAFETY
    ) -> list[Call]:
        """The Web API calls ember made that match `predicate`, once `count` have come. A
        reply's records are written while its buttons go on: they are written too when this
        returns."""
        seen = await self.slack.wait_for(predicate, count=count, timeout=timeout)
        await self.runtime.engine.records_written()
        return seen

    async def idle(self, timeout: float = SAFETY) -> None:
        """Until every listener started so far has finished its work (a reply held by the fake
        model never finishes: release it first)."""
        async with asyncio.timeout(timeout):
            await self.bot.idle()


@asynccontextmanager
async def running_ember(
    fake: FakeSlack,
    anthropic_fake: FakeAnthropic,
    settings: Settings,
    *,
    access: Any = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[Ember]:
    """ember's runtime and Slack adapter, connected (Socket Mode) or listening (HTTP mode, on a
    free loopback port); closed afterwards. `access` overrides the gate (default: open)."""
    env = dict(slack_env(fake) if environ is None else environ)
    async with (
        open_runtime(
            settings, client_factory=model_clients(anthropic_fake), access=access or OpenGate()
        ) as runtime,
        running(runtime, environ=env, host="127.0.0.1", port=0) as run,
    ):
        if settings.slack.mode == "socket":
            await fake.wait_connected(timeout=SAFETY)
        yield Ember(run.bot, runtime, fake, anthropic_fake, settings.slack.mode, run.url)


# ---------------------------------------------------------------- call predicates


def method(name: str) -> Callable[[Call], bool]:
    return lambda call: call.method == name


def in_thread(name: str, channel: str, thread_ts: str) -> Callable[[Call], bool]:
    """`name` calls (chat.postMessage, chat.startStream...) into one thread."""
    return lambda c: (
        c.method == name and c.args.get("channel") == channel and c.args.get("thread_ts") == thread_ts
    )


def action_ids(blocks: Any) -> list[str]:
    """Every button action_id in a list of blocks."""
    if not isinstance(blocks, list):
        return []
    return [
        str(e.get("action_id") or "")
        for block in blocks
        if isinstance(block, dict)
        for e in block.get("elements") or ()
        if isinstance(e, dict) and e.get("type") == "button"
    ]


def finished(call: Call) -> bool:
    """The call that gives a finished reply its Regenerate button: chat.stopStream (native
    streaming) or chat.update (the fallback)."""
    return call.method in ("chat.stopStream", "chat.update") and any(
        ":regen:" in a for a in action_ids(call.args.get("blocks"))
    )


def message_writes(calls: list[Call]) -> list[Call]:
    """Calls that put reply text on screen."""
    names = {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"}
    return [c for c in calls if c.method in names]


def shown_text(fake: FakeSlack, channel: str, thread_ts: str) -> str:
    """What the bot's messages in a thread say, in order, joined."""
    return "".join(
        str(m.get("text") or "") for m in fake.thread(channel, thread_ts) if m.get("user") == fake.bot_user_id
    )
