"""Essay announcements on Discord (core.essays.Announcer): an embed, published in
announcement channels, with a "Discuss with the model" thread under it.

Exactly once: every post carries the delivery's fixed `nonce`, and discord.py adds
`enforce_nonce` whenever a nonce is given, so a retry after a crash (same nonce, within
Discord's few-minute window) returns the message already posted instead of posting again.
Discord forgets a nonce after those few minutes, and a delivery left uncertain is retried
only after its lease (two minutes) or a longer outage, so before posting an uncertain delivery
again ember reads the channel's recent messages for its own post of that essay (its embed's
title and link), as it reads message metadata on Slack.
Publishing and the thread are idempotent too: "already crossposted" and "a thread already
exists" (its id is the message's) both count as done.

Nothing pings but the subscription's role: the embed cannot ping, its text has mentions
defused, and `allowed_mentions` names that one role (or nothing).

Requests go through discord.py's HTTP client, so its own per-route buckets and 429 retries
apply; what still fails maps to the core's delivery errors (`delivery_error`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal

import aiohttp
import discord

from bots.discord.endpoints import discord_endpoints
from bots.discord.notifier import moderators_channel
from bots.discord.render import NO_PINGS, rendered
from core import (
    Announcement,
    ChannelGone,
    Delivery,
    DeliveryError,
    DeliveryRejected,
    DiscordSettings,
    RateLimited,
    Settings,
    retry_after_seconds,
    secret,
)
from core.budget import GLOBAL, Priority, RequestScheduler
from core.budget.outside import count_outside_calls

log = logging.getLogger(__name__)

THREAD_NAME = "Discuss with the model"
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080  # a week: people read an essay over days
FOOTER = "Reply in the thread below to discuss it with the model."
FOOTER_LIMIT = 2048
ALREADY_CROSSPOSTED = 40033
THREAD_EXISTS = 160004
# How far back an uncertain delivery looks for its earlier post: one page of history.
HISTORY_LOOKBACK = 100
# Embed field limits (Discord's).
TITLE_LIMIT = 256
AUTHOR_LIMIT = 256


def defused(text: str) -> str:
    """Newsletter text shown as written: no Markdown, and no mention that renders as one."""
    return discord.utils.escape_markdown(discord.utils.escape_mentions(text))


def fitted(text: str, limit: int) -> str:
    """`defused(text)` cut to `limit` characters (escaping adds some) on a whole raw character."""
    shown = defused(text)
    while len(shown) > limit:
        text = text[: len(text) - max(1, len(shown) - limit)].rstrip()
        shown = defused(text + "…")
    return shown


def announcement_embed(essay: Announcement) -> discord.Embed:
    embed = discord.Embed(
        title=fitted(essay.title, TITLE_LIMIT),
        url=essay.link or None,
        description=defused(essay.summary) or None,
        timestamp=essay.published_at,
        colour=discord.Colour.orange(),
    )
    if essay.author:
        embed.set_author(name=fitted(essay.author, AUTHOR_LIMIT))
    if essay.image_url:
        embed.set_image(url=essay.image_url)
    # The studio's disclaimer, when the model wrote it here; the footer is plain text.
    embed.set_footer(text=f"{essay.note}\n{FOOTER}"[:FOOTER_LIMIT] if essay.note else FOOTER)
    return embed


def role_ping(role_id: str) -> tuple[str | None, discord.AllowedMentions]:
    """The content and allowed mentions of an announcement: the role, if any, and nothing else."""
    if not role_id.isdigit():
        return None, discord.AllowedMentions.none()
    allowed = discord.AllowedMentions(
        everyone=False, users=False, roles=[discord.Object(int(role_id))], replied_user=False
    )
    return f"<@&{role_id}>", allowed


def delivery_error(error: discord.HTTPException) -> DeliveryError | None:
    """The core's name for a Discord refusal; None when the outcome is unknown (5xx)."""
    detail = f"{error.status} {error.text or type(error).__name__}".strip()
    if error.status == 429:
        # discord.py retries 429s itself; one reaching us is a Cloudflare ban (no `Via`) or
        # retries used up: everyone waits.
        headers = error.response.headers
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        return RateLimited(retry_after, is_global=True, detail=f"Discord: {detail}")
    if error.status in (403, 404):
        return ChannelGone(detail)
    if error.status == 400:
        return DeliveryRejected(detail)
    if 400 <= error.status < 500:
        return DeliveryError(detail)
    return None


class DiscordAnnouncer:
    """Posts essay announcements through a logged-in client (gateway connected or REST only)."""

    def __init__(
        self, client: discord.Client, settings: DiscordSettings, scheduler: RequestScheduler
    ) -> None:
        self._client = client
        self._settings = settings
        # Discord's one request scheduler (the one its deliveries take their turns at, through
        # `delivery.send`), for the moderators' notices.
        self._scheduler = scheduler
        # Whether a channel is an announcement channel, for channels not in the client's cache.
        self._kinds: dict[int, bool] = {}

    async def announce(self, delivery: Delivery) -> str:
        channel_id = int(delivery.channel_id)
        content, allowed = role_ping(delivery.role_id)
        try:
            announcement_channel = await self._is_announcement_channel(delivery)
            earlier = await self._earlier_post(delivery) if delivery.uncertain else None
            if earlier is not None:
                if announcement_channel:
                    await self._publish(delivery, channel_id, earlier)
                return str(earlier)
            channel = self._messageable(delivery)
            message = await delivery.send(
                lambda: channel.send(
                    content=content,
                    embed=announcement_embed(delivery.announcement),
                    allowed_mentions=allowed,
                    nonce=delivery.idempotency_key,
                )
            )
        except discord.RateLimited as limited:
            raise RateLimited(limited.retry_after, detail=f"Discord: {limited}") from limited
        except discord.HTTPException as error:
            mapped = delivery_error(error)
            if mapped is None:
                raise  # a server error: the post may have happened; the retry's nonce decides
            raise mapped from error
        if announcement_channel:
            await self._publish(delivery, channel_id, message.id)
        return str(message.id)

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        try:
            thread = await delivery.send(
                lambda: self._client.http.start_thread_with_message(
                    delivery.channel_id,
                    message_id,
                    name=THREAD_NAME,
                    auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                    reason="essay announcement",
                )
            )
        except discord.HTTPException as error:
            if error.code == THREAD_EXISTS:
                return message_id  # opened by an earlier attempt: a message's thread has its id
            raise
        return str(thread["id"])

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        channel = await moderators_channel(self._client, self._settings.mod_channel, workspace_id)

        async def post() -> discord.Message:
            return await channel.send(rendered(text), allowed_mentions=NO_PINGS)

        await self._scheduler.send(Priority.ACCESS_NOTICE, post, keys=(GLOBAL,))

    async def _earlier_post(self, delivery: Delivery) -> int | None:
        """The id of this delivery's post if an earlier attempt made it: ember's own message
        with this essay's embed (a delivery is one essay in one channel; Discord's history does
        not show nonces). Reading history spends the budget like any other request; a refusal here leaves
        the decision to the post's nonce, as before."""
        wanted = announcement_embed(delivery.announcement)
        me = self._client.user
        channel = self._messageable(delivery)

        async def recent() -> list[discord.Message]:
            # One request (Discord returns up to 100 messages a page), made in its turn inside
            # the budget, so it is counted once.
            return [message async for message in channel.history(limit=HISTORY_LOOKBACK)]

        try:
            for message in await delivery.send(recent):
                if me is None or message.author.id != me.id:
                    continue
                if any((embed.title, embed.url) == (wanted.title, wanted.url) for embed in message.embeds):
                    log.info("essay delivery %d was already posted in %s", delivery.id, delivery.channel_id)
                    return message.id
        except discord.HTTPException as error:
            log.warning(
                "could not read channel %s for an earlier post of delivery %d (%s); posting with its nonce",
                delivery.channel_id,
                delivery.id,
                error,
            )
        return None

    def _messageable(self, delivery: Delivery) -> discord.PartialMessageable:
        guild = int(delivery.workspace_id) if delivery.workspace_id.isdigit() else None
        return self._client.get_partial_messageable(int(delivery.channel_id), guild_id=guild)

    async def _is_announcement_channel(self, delivery: Delivery) -> bool:
        """From the gateway's cache; without one (`ember essays poll --once`), asked once."""
        channel_id = int(delivery.channel_id)
        cached = self._client.get_channel(channel_id)
        if cached is not None:
            return isinstance(cached, discord.TextChannel) and cached.is_news()
        if channel_id not in self._kinds:
            fetched = await delivery.send(lambda: self._client.fetch_channel(channel_id))
            self._kinds[channel_id] = isinstance(fetched, discord.TextChannel) and fetched.is_news()
        return self._kinds[channel_id]

    async def _publish(self, delivery: Delivery, channel_id: int, message_id: int) -> None:
        """Send the post on to the servers following this channel. Best effort: the post stands."""
        try:
            await delivery.send(lambda: self._client.http.publish_message(channel_id, message_id))
        except discord.HTTPException as error:
            if error.code != ALREADY_CROSSPOSTED:
                log.warning(
                    "could not publish essay announcement %s in %s: %s", message_id, channel_id, error
                )


def can_announce(settings: Settings, environ: Mapping[str, str]) -> bool:
    """Whether `ember essays poll` can post on Discord: its token is in the environment."""
    return bool(environ.get(settings.discord.token_env))


@asynccontextmanager
async def rest_announcer(settings: Settings, scheduler: RequestScheduler) -> AsyncIterator[DiscordAnnouncer]:
    """An announcer over REST alone (no gateway): for `ember essays poll`. Every request spends
    Discord's budget at `scheduler`, the platform's one: discord.py's own (logging in, reading
    a channel) are counted as they go, as under `ember run`."""
    config = settings.discord
    token = secret(config.token_env, "discord.token_env", settings.source)
    trace = aiohttp.TraceConfig()
    count_outside_calls(trace, lambda: scheduler)
    with discord_endpoints(config.api_base_url, config.gateway_url):
        client = discord.Client(
            intents=discord.Intents.none(),
            allowed_mentions=discord.AllowedMentions.none(),
            http_trace=trace,
        )
        try:
            await client.login(token)
            yield DiscordAnnouncer(client, config, scheduler)
        finally:
            await client.close()
