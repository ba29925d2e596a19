"""`/opus essays subscribe|unsubscribe|list|latest`: the same on every platform.

Subscribing and unsubscribing are for moderators. The channel defaults to the one the command
was typed in; the optional role is the only thing an announcement there will ever ping.
Answers are private to the caller. Essay titles and summaries come from the feed, so the text
shown here defuses anything that reads as a mention.
"""

from __future__ import annotations

from typing import Any

from core.commands import CommandContext, CommandResult, CommandSpec, Param
from core.errors import UsageError
from core.essays import Announcement, EssayService, SubscriptionView


def _service(ctx: CommandContext) -> EssayService:
    service: EssayService = ctx.runtime.essays
    return service


def _channel(ctx: CommandContext, args: dict[str, Any], usage: str) -> str:
    channel = str(args.get("channel") or "")
    if channel:
        return channel
    if ctx.place.is_direct:
        raise UsageError("in a direct message, name the channel", usage)
    return ctx.place.channel_id


def role_mention(platform: str, role_id: str) -> str:
    """How each platform writes a role (Slack: a user group). Only shown privately."""
    return f"<!subteam^{role_id}>" if platform == "slack" else f"<@&{role_id}>"


def defuse(text: str) -> str:
    """Feed text shown inside a command's answer: no @everyone, no <!channel>, no <@id>."""
    return text.replace("@", "@\u200b").replace("<", "‹").replace(">", "›")


async def subscribe(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    channel = _channel(ctx, args, "essays subscribe [channel] [role]")
    role = str(args.get("role") or "")
    place = ctx.place
    _, created = await _service(ctx).subscribe(place.platform, place.workspace_id, channel, role, ctx.invoker)
    ping = f", pinging {role_mention(place.platform, role)}" if role else " (pinging nobody)"
    verb = "will now be announced" if created else "are announced"
    return CommandResult(f"New essays {verb} in <#{channel}>{ping}.")


async def unsubscribe(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    channel = _channel(ctx, args, "essays unsubscribe [channel]")
    place = ctx.place
    if await _service(ctx).unsubscribe(place.platform, place.workspace_id, channel, ctx.invoker):
        return CommandResult(f"Essays will no longer be announced in <#{channel}>.")
    return CommandResult(f"<#{channel}> was not subscribed to essays; nothing changed.")


def _subscription_line(view: SubscriptionView) -> str:
    ping = f", pinging {role_mention(view.platform, view.role_id)}" if view.role_id else ""
    if view.enabled:
        return f"• <#{view.channel_id}>{ping}"
    return f"• <#{view.channel_id}> — paused: {view.disabled_reason}"


async def list_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    views = await _service(ctx).subscriptions(ctx.place.platform, ctx.place.workspace_id)
    if not views:
        return CommandResult("No channel here is subscribed to essays yet.")
    return CommandResult("Essays are announced in:\n" + "\n".join(_subscription_line(v) for v in views))


def latest_text(essay: Announcement) -> str:
    byline = f" by {defuse(essay.author)}" if essay.author else ""
    date = f", {essay.published_at:%d %B %Y}" if essay.published_at else ""
    lines = [f"**{defuse(essay.title)}**{byline}{date}"]
    if essay.link:
        lines.append(essay.link)
    if essay.summary:
        lines.append(defuse(essay.summary))
    return "\n".join(lines)


async def latest(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    essay = await _service(ctx).latest()
    if essay is None:
        return CommandResult("No essay has been seen yet.")
    # `extra` lets an adapter render it as it renders announcements (embed, blocks).
    return CommandResult(latest_text(essay), extra={"essay": essay})


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
