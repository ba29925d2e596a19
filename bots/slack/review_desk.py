"""The essay studio's review desk in Slack: a draft's header with Approve and Veto buttons
posted to `[studio.slack] review_channel`, its whole text in the message's thread (as a file
when long), escaped so nothing in it pings or hides a link; and the header edited to the
draft's outcome once it is settled. Every call waits its turn in Slack's budget.

Slack has no nonce: a post an earlier attempt may have made is looked for in the channel's
history (the Approve button's id names the draft) and finished rather than posted twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from bots.slack.traits import method_key
from core import DraftPreview
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

Payload = dict[str, Any]
# Past this many messages the text goes in the thread as one file instead.
MOST_PIECES = 6
# How far back an earlier attempt's post is looked for.
HISTORY_LOOKBACK = 50
T = TypeVar("T")


def preview_blocks(preview: DraftPreview) -> list[render.Block]:
    header = render.trusted(preview.header)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": header[:3000]}},
        {
            "type": "actions",
            "elements": [
                _button(preview.approve_id, preview.approve_label, "primary"),
                _button(preview.veto_id, preview.veto_label, "danger"),
            ],
        },
    ]


def _button(action_id: str, label: str, style: str) -> render.Block:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "style": style,
    }


def settled_blocks(summary: str) -> list[render.Block]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": render.trusted(summary)[:3000]}}]


class SlackReviewDesk:
    """`core.ports.ReviewDesk` over the Web API; every call waits its turn in Slack's budget."""

    def __init__(self, client: AsyncWebClient, budget: Callable[[], RequestScheduler]) -> None:
        self._client = client
        self._budget = budget

    async def post_draft(self, preview: DraftPreview) -> str:
        channel = preview.channel_id
        earlier = await self._earlier_post(preview) if preview.uncertain else None
        if earlier is not None and int(earlier.get("reply_count") or 0) > 0:
            return str(earlier["ts"])  # posted whole by an earlier attempt
        if earlier is None:
            posted = await self._spend(
                "chat.postMessage",
                channel,
                lambda: self._client.chat_postMessage(
                    channel=channel,
                    text=render.trusted(preview.header),
                    blocks=preview_blocks(preview),
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )
            earlier = {"ts": posted["ts"]}
        thread = str(earlier["ts"])
        await self._post_text(preview, thread)
        return thread

    async def _post_text(self, preview: DraftPreview, thread: str) -> None:
        channel = preview.channel_id
        pieces = render.fit(preview.text, render.MESSAGE_LIMIT)
        if len(pieces) > MOST_PIECES:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread,
                content=preview.text,
                filename=f"draft-{preview.draft_id}.txt",
            )
            return
        for piece in pieces:
            shown = render.model_text(piece)
            await self._spend(
                "chat.postMessage",
                channel,
                functools.partial(
                    self._client.chat_postMessage,
                    channel=channel,
                    thread_ts=thread,
                    text=shown,
                    blocks=[{"type": "markdown", "text": shown}],
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )

    async def show_outcome(self, channel_id: str, message_id: str, summary: str) -> None:
        await self._spend(
            "chat.update",
            channel_id,
            lambda: self._client.chat_update(
                channel=channel_id,
                ts=message_id,
                text=render.trusted(summary),
                blocks=settled_blocks(summary),
            ),
        )

    async def _earlier_post(self, preview: DraftPreview) -> Payload | None:
        """The message carrying this draft's Approve button, if an earlier attempt posted it
        (Slack has no nonce: the channel's history is what tells). A refusal to read is logged
        and the preview posted."""
        try:
            found = await self._spend(
                "conversations.history",
                preview.channel_id,
                lambda: self._client.conversations_history(
                    channel=preview.channel_id, limit=HISTORY_LOOKBACK
                ),
            )
        except SlackApiError as error:
            log.warning("studio: could not read the review channel: %s", error.response.get("error"))
            return None
        for message in found.get("messages") or []:
            if any(
                element.get("action_id") == preview.approve_id
                for block in message.get("blocks") or []
                for element in block.get("elements") or []
            ):
                log.info("studio: draft #%d was already posted in %s", preview.draft_id, preview.channel_id)
                return dict(message)
        return None

    async def _spend(self, method: str, channel_id: str, call: Callable[[], Awaitable[T]]) -> T:
        # The desk serves one review channel of ember's one workspace, whose id it is not told:
        # its per-workspace windows are keyed by the channel's method alone.
        keys = (method_key(method, "", channel_id),)
        sent = await self._budget().send(Priority.ACCESS_NOTICE, call, keys=keys)
        assert sent is not None, "only merged edits and typing come back empty"
        return sent
