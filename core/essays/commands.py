"""`/opus essays subscribe|unsubscribe|list|latest`: the same on every platform.

Subscribing and unsubscribing are for moderators. The channel defaults to the one the command
was typed in; the optional role is the only thing an announcement there will ever ping.
Answers are private to the caller. Essay titles and summaries come from the feed, so the text
shown here defuses anything that reads as a mention (core.essays.wording).
"""

from __future__ import annotations

from typing import Any

from core.commands import CommandContext, CommandResult, CommandSpec, Param
from core.errors import UsageError
from core.essays import wording
from core.essays.service import EssayService


def _service(ctx: CommandContext) -> EssayService:
    service: EssayService = ctx.runtime.essays
    return service


def _channel(ctx: CommandContext, args: dict[str, Any], usage: str) -> str:
    channel = str(args.get("channel") or "")
    if channel:
        return channel
    if ctx.place.is_direct:
        raise UsageError(wording.IN_A_DM, usage)
    return ctx.place.channel_id


def role_mention(ctx: CommandContext, platform: str, role_id: str) -> str:
    """The role as its platform writes it (Slack: a user group); "" for no role. Only shown
    privately, to the moderator who set it."""
    return ctx.runtime.platforms.of(platform).mention_role(role_id) if role_id else ""


async def subscribe(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    channel = _channel(ctx, args, "essays subscribe [channel] [role]")
    role = str(args.get("role") or "")
    place = ctx.place
    _, created = await _service(ctx).subscribe(place.platform, place.workspace_id, channel, role, ctx.invoker)
    return CommandResult(wording.subscribed(channel, role_mention(ctx, place.platform, role), created))


async def unsubscribe(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    channel = _channel(ctx, args, "essays unsubscribe [channel]")
    place = ctx.place
    changed = await _service(ctx).unsubscribe(place.platform, place.workspace_id, channel, ctx.invoker)
    return CommandResult(wording.unsubscribed(channel, changed))


async def list_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    views = await _service(ctx).subscriptions(ctx.place.platform, ctx.place.workspace_id)
    lines = [wording.subscription_line(v, role_mention(ctx, v.platform, v.role_id)) for v in views]
    return CommandResult(wording.subscription_list(lines))


async def latest(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    essay = await _service(ctx).latest()
    if essay is None:
        return CommandResult(wording.NO_ESSAY_YET)
    # `extra` lets an adapter render it as it renders announcements (embed, blocks).
    return CommandResult(wording.latest_text(essay), extra={"essay": essay})


_CHANNEL = Param("channel", "channel", "the channel (default: this one)")

ESSAY_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        ("essays", "subscribe"),
        "announce new essays in a channel, optionally pinging a role",
        subscribe,
        (_CHANNEL, Param("role", "role", "the role to ping with each announcement")),
        moderator_only=True,
    ),
    CommandSpec(
        ("essays", "unsubscribe"),
        "stop announcing essays in a channel",
        unsubscribe,
        (_CHANNEL,),
        moderator_only=True,
    ),
    CommandSpec(("essays", "list"), "which channels here announce essays", list_),
    CommandSpec(("essays", "latest"), "show the latest essay", latest),
)
