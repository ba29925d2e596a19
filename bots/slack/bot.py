"""What every Slack listener shares: the facade, the Slack client and the adapter's own caches.

One `SlackBot` per app, built by `bots.slack.app.register`; nothing here is module state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.files import FileFetcher
from bots.slack.people import People
from bots.slack.recent import RecentKeys
from bots.slack.sink import SlackSink, StreamingSupport
from bots.slack.traits import PLATFORM
from core import Commands, Ember, Place, SlackSettings

log = logging.getLogger(__name__)

# On shutdown, replies in flight are stopped (their text stays) and get this long to say so.
SHUTDOWN_GRACE = 5.0


@dataclass
class SlackBot:
    ember: Ember
    settings: SlackSettings
    client: AsyncWebClient
    people: People
    commands: Commands
    files: FileFetcher | None = None
    streaming: StreamingSupport = field(default_factory=StreamingSupport)
    recent: RecentKeys = field(default_factory=RecentKeys)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def sink(self, place: Place, recipient_id: str, reply_id: str, *, taken_over: bool = False) -> SlackSink:
        """A reply in `place`, written for `recipient_id` (`taken_over`: from a host that died)."""
        scheduler = self.ember.scheduler(PLATFORM)
        return SlackSink(
            self.client, place, recipient_id, reply_id, self.streaming, scheduler, taken_over=taken_over
        )

    def reopen(self, place: Place, reply_id: str, *, requester_id: str, after: str) -> SlackSink:
        """A reply another host began (it stopped: `core.chat.takeover`), over the Web API;
        its messages are edited with chat.update (a native stream it left open is stopped first),
        a new one goes in the same thread."""
        return self.sink(place, requester_id, reply_id, taken_over=True)

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
        self.ember.stop_replies(PLATFORM)
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
