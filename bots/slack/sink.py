"""A reply surface (core.ports.ReplySurface) for Slack: native streaming where Slack offers it, post + chat.update where not.

The core hands the sink whole message texts (`post`, then `edit` with more). A Slack message is
drawn as a chain of parts so that no part outgrows Slack's limits, whatever escaping does to
the length; when Slack still answers `msg_too_long`, the limit halves and the text is redrawn.

A part is a native stream (chat.startStream, appended with chat.appendStream, ended with
chat.stopStream) when the reply goes in a thread and the workspace allows streaming. When the
method is refused, or a stream has expired, the part becomes an ordinary message kept current
with chat.update, at most about once a second.

Slack's streams take Block Kit only when they stop, so a streamed part shows its buttons at the
end; an ordinary part shows a Stop button while the reply is written.

Every call spends the workspace's budget for its method (`bots.slack.traits.TIERS`, through
Slack's one request scheduler): a reply streams natively only when starting and later stopping
a stream both have room now, else it is posted and updated; appends and updates wait their turn
while the text grows, so each carries everything new; a reply's final text goes ahead of
intermediate ones.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from bots.slack.traits import EDIT_INTERVAL, MAX_MESSAGE_CHARS, method_key
from core import Control, Outcome, Place, controls_for
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_CHARS = MAX_MESSAGE_CHARS
STREAM_INTERVAL = 0.5  # appendStream sends only what is new, so it can run a little faster
UPDATE_INTERVAL = EDIT_INTERVAL  # chat.update resends the whole text: about once a second
MIN_LIMIT = 500
# Answers that say this workspace or token cannot stream at all (not a passing failure).
STREAMING_REFUSED = frozenset(
    {
        "unknown_method",
        "method_not_supported",
        "method_deprecated",
        "not_allowed_token_type",
        "missing_scope",
        "feature_not_enabled",
        "not_enabled",
        "team_not_allowed",
    }
)


def slack_error(error: SlackApiError) -> str:
    return str(error.response.get("error") or "")


class StreamingSupport:
    """Whether this app may use native streaming; switched off for good on a refusal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def refuse(self, reason: str) -> None:
        if self.enabled:
            log.warning("Slack refused native streaming (%s); replies are posted and edited instead", reason)
        self.enabled = False


@dataclass
class _Part:
    ts: str
    shown: str  # the escaped text it shows
    streaming: bool
    # The escaped text it should show: ahead of `shown` while an edit waits for the budget.
    wanted: str = ""

    @property
    def behind(self) -> bool:
        return bool(self.wanted) and self.wanted != self.shown


class SlackSink:
    max_chars = MAX_CHARS

    def __init__(
        self,
        client: AsyncWebClient,
        place: Place,
        recipient_id: str,
        reply_id: str,
        streaming: StreamingSupport,
        scheduler: RequestScheduler,
        *,
        taken_over: bool = False,
    ) -> None:
        """A reply in `place` (its thread; none: the channel itself) for `recipient_id` (streams
        into channels name whom they are for). `taken_over`: begun by a host that died, whose
        native stream may still be open."""
        self._client = client
        self.place = place
        self._recipient_id = recipient_id
        self.reply_id = reply_id
        self._streaming = streaming
        self._scheduler = scheduler
        # The priority of the text being drawn: a part's last text goes ahead of the rest.
        self._drawing = Priority.FIRST_TEXT
        self._limit = render.MESSAGE_LIMIT
        self._chains: dict[str, list[_Part]] = {}
        self._taken_over = taken_over
        self._last: _Part | None = None
        self.edit_interval = STREAM_INTERVAL if self._can_stream else UPDATE_INTERVAL

    @property
    def _can_stream(self) -> bool:
        return self._streaming.enabled and bool(self.place.thread_id)

    # ------------------------------------------------------------------ ReplySink

    async def post(self, text: str) -> str:
        parts: list[_Part] = []
        self._drawing = Priority.FIRST_TEXT
        await self._draw(parts, text)
        self._chains[parts[0].ts] = parts
        return parts[0].ts

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        parts = self._chains.get(handle)
        if parts is None:
            parts = await self._adopt(handle)
        self._drawing = Priority.FINAL_TEXT if final else Priority.EDIT
        await self._draw(parts, text)

    async def notice(self, text: str) -> None:
        place = self.place
        await self._spend(
            Priority.ANSWER,
            "chat.postEphemeral",
            lambda: self._client.chat_postEphemeral(
                channel=place.channel_id,
                user=self._recipient_id,
                text=render.escape(text),
                thread_ts=place.thread_id or None,
            ),
        )

    async def _adopt(self, handle: str) -> list[_Part]:
        """An earlier reply's message that this reply rewrites (regenerate in place): an
        ordinary message from now on, edited with chat.update."""
        if self._last is not None:
            await self._seal(self._last)
        if self._taken_over:
            await self._end_stream_left_open(handle)
        parts = [_Part(handle, "", streaming=False)]
        self._chains[handle] = parts
        self._last = parts[0]
        self.edit_interval = UPDATE_INTERVAL
        return parts

    async def _end_stream_left_open(self, ts: str) -> None:
        """The message of a host that died mid-reply may be a native stream it never stopped:
        stop it (adding nothing), so chat.update can carry the reply on there."""
        if not self._streaming.enabled:
            return  # this app streams nothing here: the message is an ordinary one
        try:
            await self._spend(
                Priority.FINAL_TEXT,
                "chat.stopStream",
                lambda: self._client.chat_stopStream(channel=self.place.channel_id, ts=ts),
            )
        except SlackApiError as error:  # an ordinary message, or a stream Slack already ended
            log.info("message %s was no open stream (%s)", ts, slack_error(error))

    async def delete(self, handle: str) -> None:
        """Remove a message this reply no longer needs (what a shorter regenerate left over)."""
        try:
            await self._spend(
                Priority.ANSWER,
                "chat.delete",
                lambda: self._client.chat_delete(channel=self.place.channel_id, ts=handle),
            )
        except SlackApiError as error:
            log.info("could not delete leftover message %s (%s)", handle, slack_error(error))

    async def clear_buttons(self, ts: str, shown: str) -> None:
        """Take the buttons off a message that keeps its (already escaped) text."""
        await self._spend(
            Priority.ANSWER,
            "chat.update",
            lambda: self._client.chat_update(
                channel=self.place.channel_id,
                ts=ts,
                text=shown,
                blocks=render.reply_blocks(shown, self.reply_id, []),
            ),
        )

    # ------------------------------------------------------------------ the end of a reply

    async def finish(self, outcome: Outcome, leftover: Sequence[str] = ()) -> None:
        """The reply's final buttons, then away with what a shorter regenerate left over. A
        refusal is logged, not raised: the reply itself is already shown."""
        try:
            await self._close(outcome)
        except SlackApiError as error:
            log.warning(
                "could not add buttons to reply %s [trace %s]: %s", outcome.reply_id, outcome.trace_id, error
            )
        for handle in leftover:
            await self.delete(handle)

    async def abandon(self) -> None:
        """The answer broke off unexpectedly: the newest part loses its Stop button (its text stays)."""
        part = self._last
        if part is None:
            return
        try:
            if part.streaming:
                await self._catch_up(part)
                await self._stop(part)
            else:
                await self._update(part, part.wanted or part.shown, [], Priority.FINAL_TEXT)
        except SlackApiError as error:
            log.warning("could not take Stop off reply %s: %s", self.reply_id, slack_error(error))

    def stop_typing(self) -> None:
        """Slack shows no typing sign for apps: the first words appear at once instead."""

    async def _close(self, outcome: Outcome) -> None:
        """End the newest part and give the reply its final buttons (Regenerate, Continue)."""
        part = self._last
        if part is None:
            return
        controls = controls_for(outcome, streaming=False)
        if part.streaming:
            actions = render.buttons(self.reply_id, controls)
            try:
                await self._catch_up(part)
                await self._stop(part, blocks=[actions] if actions else None)
                return
            except SlackApiError as error:
                log.info("could not stop stream %s (%s); updating it instead", part.ts, slack_error(error))
        # The final text (if it was held) and the buttons, in one update.
        await self._update(part, part.wanted or part.shown, controls, Priority.FINAL_TEXT)

    # ------------------------------------------------------------------ drawing

    async def _draw(self, parts: list[_Part], text: str) -> None:
        while True:
            try:
                await self._draw_once(parts, text)
                return
            except SlackApiError as error:
                if slack_error(error) != "msg_too_long" or self._limit <= MIN_LIMIT:
                    raise
                self._limit = max(MIN_LIMIT, self._limit // 2)
                log.info(
                    "Slack said msg_too_long; drawing reply %s in parts of %d", self.reply_id, self._limit
                )

    async def _draw_once(self, parts: list[_Part], text: str) -> None:
        pieces = [render.model_text(piece) for piece in render.fit(text, self._limit)]
        for index, piece in enumerate(pieces):
            if index < len(parts):
                if parts[index].shown != piece:
                    await self._extend(parts[index], piece)
                continue
            if self._last is not None:
                await self._seal(self._last)
            part = await self._start(piece)
            parts.append(part)
            self._last = part

    async def _start(self, piece: str) -> _Part:
        place = self.place
        if self._can_stream and self._stream_fits():
            try:
                response = await self._spend(
                    Priority.FIRST_TEXT,
                    "chat.startStream",
                    lambda: self._client.chat_startStream(
                        channel=place.channel_id,
                        thread_ts=place.thread_id,
                        markdown_text=piece,
                        recipient_user_id=self._recipient_id,
                        recipient_team_id=place.workspace_id,
                    ),
                )
                return _Part(str(response["ts"]), piece, streaming=True)
            except SlackApiError as error:
                self._stream_failed(error)
        response = await self._spend(
            Priority.FIRST_TEXT,
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=place.channel_id,
                thread_ts=place.thread_id or None,
                text=piece,
                blocks=render.reply_blocks(piece, self.reply_id, [Control.STOP]),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        return _Part(str(response["ts"]), piece, streaming=False)

    def _stream_fits(self) -> bool:
        """A native stream costs a start now and a stop later, both Tier 2 (20 a minute per
        workspace): stream only while both have room, else post and update."""
        keys = (self._key("chat.startStream"), self._key("chat.stopStream"))
        return self._scheduler.has_room(Priority.EDIT, keys)

    async def _extend(self, part: _Part, piece: str) -> None:
        part.wanted = piece
        if self._holds(part):
            return
        if part.streaming and piece.startswith(part.shown):
            try:
                await self._spend(
                    self._drawing,
                    "chat.appendStream",
                    lambda: self._client.chat_appendStream(
                        channel=self.place.channel_id, ts=part.ts, markdown_text=piece[len(part.shown) :]
                    ),
                )
                part.shown = piece
                return
            except SlackApiError as error:
                if slack_error(error) == "msg_too_long":
                    raise
                log.info("stream %s ended early (%s); editing it instead", part.ts, slack_error(error))
        part.streaming = False
        self.edit_interval = UPDATE_INTERVAL
        await self._update(part, piece, [Control.STOP] if part is self._last else [], self._drawing)

    def _holds(self, part: _Part) -> bool:
        """Whether this text waits in hand instead of being sent now: an intermediate edit the
        budget has no room for (the next write carries it), or the newest part's final text when
        it is an ordinary message (it goes with the buttons, as one update)."""
        if self._drawing is Priority.FINAL_TEXT:
            return part is self._last and not part.streaming
        if self._drawing is not Priority.EDIT:
            return False
        method = "chat.appendStream" if part.streaming else "chat.update"
        return not self._scheduler.has_room(Priority.EDIT, (self._key(method),))

    async def _catch_up(self, part: _Part) -> None:
        """Before a stream stops: append whatever text was held back."""
        if part.behind and part.wanted.startswith(part.shown):
            remainder = part.wanted[len(part.shown) :]
            await self._spend(
                Priority.FINAL_TEXT,
                "chat.appendStream",
                lambda: self._client.chat_appendStream(
                    channel=self.place.channel_id, ts=part.ts, markdown_text=remainder
                ),
            )
            part.shown = part.wanted

    async def _seal(self, part: _Part) -> None:
        """A part the reply has moved on from: its stream ends, its Stop button goes."""
        if part.streaming:
            try:
                await self._catch_up(part)
                await self._stop(part)
                part.streaming = False
                return
            except SlackApiError as error:
                log.info("could not stop stream %s (%s)", part.ts, slack_error(error))
        await self._update(part, part.wanted or part.shown, [], Priority.FINAL_TEXT)

    async def _stop(self, part: _Part, blocks: list[dict[str, object]] | None = None) -> None:
        await self._spend(
            Priority.FINAL_TEXT,
            "chat.stopStream",
            lambda: self._client.chat_stopStream(channel=self.place.channel_id, ts=part.ts, blocks=blocks),
        )

    async def _update(self, part: _Part, piece: str, controls: list[Control], priority: Priority) -> None:
        await self._spend(
            priority,
            "chat.update",
            lambda: self._client.chat_update(
                channel=self.place.channel_id,
                ts=part.ts,
                text=piece,
                blocks=render.reply_blocks(piece, self.reply_id, controls),
            ),
        )
        part.shown, part.streaming = piece, False

    def _key(self, method: str) -> str:
        return method_key(method, self.place.workspace_id, self.place.channel_id)

    async def _spend(self, priority: Priority, method: str, call: Callable[[], Awaitable[T]]) -> T:
        result = await self._scheduler.send(priority, call, keys=(self._key(method),))
        assert result is not None, "only merged calls and typing come back empty"
        return result

    def _stream_failed(self, error: SlackApiError) -> None:
        reason = slack_error(error)
        if reason == "msg_too_long":
            raise error
        if reason in STREAMING_REFUSED:
            self._streaming.refuse(reason)
        else:
            log.info("chat.startStream failed (%s); posting this part instead", reason)
        self.edit_interval = UPDATE_INTERVAL
