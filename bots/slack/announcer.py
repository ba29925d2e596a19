"""Essay announcements in Slack (core.essays.Announcer): Block Kit with a header, the
summary, a context line and a "Read the essay" button, plus fallback text; no unfurls.

Exactly once: every announcement carries message metadata naming its delivery. When an
earlier attempt may have posted (`delivery.uncertain`), the channel's recent history is read
with `include_all_metadata` first, and a message found there is the announcement: nothing is
posted again.

Nothing pings but the subscription's user group (`<!subteam^ID>`): newsletter text is escaped
(`&`, `<`, `>`), so no `<!channel>` or `<@U1>` in a title is ever parsed. Thread replies under
the announcement are its discussion: the thread id is the announcement's own ts, so opening it
costs no request.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import render
from bots.slack.bot import SlackBot
from bots.slack.client import build_client
from bots.slack.traits import method_key
from core import (
    Announcement,
    ChannelGone,
    Delivery,
    DeliveryError,
    DeliveryRejected,
    PlatformTraits,
    RateLimited,
    Settings,
    SlackSettings,
    retry_after_seconds,
)
from core.budget import Priority, RequestScheduler

log = logging.getLogger(__name__)

EVENT_TYPE = "ember_essay_announcement"
READ_ACTION = "ember:essay:read"
HEADER_LIMIT = 150  # Slack's limit for a header block's text
# How far back a retry looks for its earlier post: the lease is minutes, so this is plenty.
HISTORY_LOOKBACK = 200
USER_GROUP = re.compile(r"^S[A-Z0-9]+$")

GONE = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
    }
)
REJECTED = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_arguments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "metadata_must_be_sent_from_app",
    }
)
# Certain refusals that a later try may get past (a fixed token, a granted scope).
REFUSED = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired", "missing_scope"}
)

Block = dict[str, Any]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def byline(essay: Announcement) -> str:
    parts = [essay.author] if essay.author else []
    if essay.published_at:
        parts.append(f"{essay.published_at:%d %B %Y}")
    return " · ".join(parts)


def ping(role_id: str) -> str:
    """The user group to notify, as Slack writes it; nothing for anything else."""
    return f"<!subteam^{role_id}>" if USER_GROUP.match(role_id) else ""


def announcement_blocks(essay: Announcement, role_id: str = "") -> list[Block]:
    # Header and button labels are plain_text: Slack parses nothing there, so they are not escaped.
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(essay.title, HEADER_LIMIT), "emoji": True},
        }
    ]
    lead = ping(role_id)
    summary = " ".join(part for part in (lead, render.escape(essay.summary)) if part)
    if summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
    context = [render.escape(byline(essay))] if byline(essay) else []
    context.append("Reply in this thread to discuss it with the model.")
    elements = [{"type": "mrkdwn", "text": " · ".join(context)}]
    if essay.note:  # the studio's disclaimer, when the model wrote it here
        elements.append({"type": "mrkdwn", "text": render.escape(essay.note)})
    blocks.append({"type": "context", "elements": elements})
    if essay.link:
        button = {
            "type": "button",
            "action_id": READ_ACTION,
            "text": {"type": "plain_text", "text": "Read the essay"},
            "url": essay.link,
            "style": "primary",
        }
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


def fallback_text(essay: Announcement, role_id: str = "") -> str:
    """What notifications and screen readers show."""
    text = f"New essay: {render.escape(essay.title)}"
    if essay.author:
        text += f" by {render.escape(essay.author)}"
    if essay.link:
        text += f" {render.escape(essay.link)}"
    lead = ping(role_id)
    return f"{lead} {text}" if lead else text


def metadata(delivery: Delivery) -> dict[str, Any]:
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"delivery": delivery.idempotency_key, "essay_id": delivery.announcement.essay_id},
    }


def delivery_error(error: SlackApiError) -> DeliveryError | None:
    """The core's name for a Slack refusal; None when the outcome is unknown."""
    response = error.response
    code = str(response.get("error") or "")
    if code == "ratelimited" or response.status_code == 429:
        retry_after = retry_after_seconds(
            response.headers.get("Retry-After") or response.headers.get("retry-after")
        )
        return RateLimited(retry_after, detail=f"Slack: ratelimited; retry after {retry_after:g} s")
    if code in GONE:
        return ChannelGone(code)
    if code in REJECTED:
        return DeliveryRejected(code)
    if code in REFUSED:
        return DeliveryError(code)
    return None


class SlackAnnouncer:
    def __init__(self, client: AsyncWebClient, settings: SlackSettings, scheduler: RequestScheduler) -> None:
        self._client = client
        self._settings = settings
        # Slack's one request scheduler (the one its deliveries take their turns at, through
        # `delivery.send`), for the moderators' notices.
        self._scheduler = scheduler

    async def announce(self, delivery: Delivery) -> str:
        essay = delivery.announcement
        try:
            if delivery.uncertain:
                earlier = await self._earlier_post(delivery)
                if earlier:
                    return earlier
            response = await delivery.send(
                lambda: self._client.chat_postMessage(
                    channel=delivery.channel_id,
                    text=fallback_text(essay, delivery.role_id),
                    blocks=announcement_blocks(essay, delivery.role_id),
                    metadata=metadata(delivery),
                    unfurl_links=False,
                    unfurl_media=False,
                )
            )
        except SlackApiError as error:
            mapped = delivery_error(error)
            if mapped is None:
                raise
            raise mapped from error
        return str(response["ts"])

    async def _earlier_post(self, delivery: Delivery) -> str | None:
        """The ts of this delivery's post if an earlier attempt made it (history is a separate
        Slack rate tier from posting, so it is not paced with the posts)."""
        history = await self._client.conversations_history(
            channel=delivery.channel_id, limit=HISTORY_LOOKBACK, include_all_metadata=True
        )
        for message in history.get("messages") or []:
            found = message.get("metadata") or {}
            payload = found.get("event_payload") or {}
            if found.get("event_type") == EVENT_TYPE and payload.get("delivery") == delivery.idempotency_key:
                log.info("essay delivery %d was already posted in %s", delivery.id, delivery.channel_id)
                return str(message["ts"])
        return None

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        return message_id  # replies under the announcement are its thread: no request

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        if not self._settings.mod_channel:
            raise LookupError("no moderators' channel: set [slack] mod_channel to a channel id")
        channel = self._settings.mod_channel

        async def post() -> object:
            return await self._client.chat_postMessage(
                channel=channel, text=render.trusted(text), unfurl_links=False, unfurl_media=False
            )

        keys = (method_key("chat.postMessage", workspace_id, channel),)
        await self._scheduler.send(Priority.ACCESS_NOTICE, post, keys=keys)


def register(app: AsyncApp, bot: SlackBot, traits: PlatformTraits) -> None:
    """Announce essays through the bot's client; acknowledge "Read the essay" clicks (the button
    opens its URL; Slack still reports the click and expects an ack)."""

    @app.action(READ_ACTION)
    async def on_read(ack: AsyncAck) -> None:
        await ack()

    scheduler = bot.ember.scheduler(traits.platform)
    bot.ember.announce_with(traits, SlackAnnouncer(bot.client, bot.settings, scheduler))


def can_announce(settings: Settings, environ: Mapping[str, str]) -> bool:
    """Whether `ember essays poll` can post in Slack: the bot token is in the environment."""
    return bool(environ.get(settings.slack.bot_token_env))


@asynccontextmanager
async def rest_announcer(settings: Settings, scheduler: RequestScheduler) -> AsyncIterator[SlackAnnouncer]:
    """An announcer over the Web API alone, spending Slack's budget at `scheduler` (the
    platform's one): for `ember essays poll`."""
    yield SlackAnnouncer(build_client(settings), settings.slack, scheduler)
