"""What every Slack listener shares: the core, the Slack client and the adapter's own caches.

One `SlackBot` per app, built by `bots.slack.app.register`; nothing here is module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.convert import Where
from bots.slack.files import FileFetcher
from bots.slack.people import People
from bots.slack.recent import RecentKeys
from bots.slack.sink import SlackSink, StreamingSupport, Target
from core.chat import Outcome, new_reply_id
from core.commands import Commands
from core.config import SlackSettings
from core.events import Message
from core.runtime import Runtime

log = logging.getLogger(__name__)

# On shutdown, replies in flight are stopped (their text stays) and get this long to say so.
SHUTDOWN_GRACE = 5.0


@dataclass
class SlackBot:
    runtime: Runtime
    settings: SlackSettings
    client: AsyncWebClient
    people: People
    commands: Commands
    files: FileFetcher | None = None
    streaming: StreamingSupport = field(default_factory=StreamingSupport)
    recent: RecentKeys = field(default_factory=RecentKeys)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _replies: set[str] = field(default_factory=set)

    def sink(self, target: Target, reply_id: str) -> SlackSink:
        return SlackSink(self.client, target, reply_id, self.streaming)

    async def answer(self, message: Message, where: Where, *, recorded: bool = False) -> Outcome:
        """Stream the model's answer to `message` where it belongs, then give it its buttons.
        `recorded`: the message is in the store already (an event claims it that way)."""
        reply_id = new_reply_id()
        target = Target(where.channel, where.thread_ts, message.author.id, message.place.workspace_id)
        sink = self.sink(target, reply_id)
        with self.replying(reply_id):
            outcome = await self.runtime.engine.respond(message, sink, reply_id=reply_id, recorded=recorded)
        await self.finish(sink, outcome)
        return outcome

    @contextlib.contextmanager
    def replying(self, reply_id: str) -> Iterator[None]:
        """Note a reply in flight here, so shutdown can stop it cleanly."""
        self._replies.add(reply_id)
        try:
            yield
        finally:
            self._replies.discard(reply_id)

    async def finish(self, sink: SlackSink, outcome: Outcome) -> None:
        try:
            await sink.close(outcome)
        except SlackApiError as error:
            log.warning(
                "could not add buttons to reply %s [trace %s]: %s", outcome.reply_id, outcome.trace_id, error
            )

    async def run(self, work: Awaitable[None]) -> None:
        """Run a listener's work, counted so shutdown can wind it down; errors are logged."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await work
        except Exception:
            log.exception("a Slack listener failed")
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def idle(self) -> None:
        """Until no listener is working: what was delivered so far has been fully handled.
        (A listener starts as soon as bolt acknowledges its request, before the ack is sent.)"""
        while pending := [t for t in self._tasks if t is not asyncio.current_task()]:
            await asyncio.wait(pending)

    async def shutdown(self) -> None:
        """Stop replies in flight (what they said stays), let them finish briefly, then cancel."""
        for reply_id in list(self._replies):
            self.runtime.engine.stop(reply_id)
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
