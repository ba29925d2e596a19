"""`/opus access …` and `/opus usage`: access by request, the same on every platform.

Handlers only translate: they find the workspace and the target, call core.access, and word the
answer. Moderator-only commands are marked in their specs, so `Commands.run` refuses everyone
else before a handler runs.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from core.access import (
    AccessService,
    AuditEntry,
    GrantView,
    RequestView,
    Standing,
    in_text,
    mention,
    require_workspace,
    space_word,
    when_text,
)
from core.chat import usage
from core.commands import CommandContext, CommandResult, CommandSpec, Param
from core.errors import CommandError, NotModerator
from core.events import User

# Past this, a listing is sent as a file rather than a wall of text.
INLINE_CHARS = 1800


def _service(ctx: CommandContext) -> AccessService:
    service: AccessService = ctx.runtime.access
    return service


def _workspace(ctx: CommandContext) -> str:
    return require_workspace(ctx.invoker.platform, ctx.place.workspace_id or ctx.invoker.workspace_id)


def _invoker(ctx: CommandContext) -> User:
    """The caller, placed in the workspace the command is about."""
    return dataclasses.replace(ctx.invoker, workspace_id=_workspace(ctx))


async def _target(ctx: CommandContext, user_id: str, *, must_exist: bool) -> User:
    """The person a command names. Bots are never targets; unknown people only where the store
    alone can answer (revoking a grant of someone who has left, say)."""
    workspace = _workspace(ctx)
    if ctx.directory is None:
        return dataclasses.replace(ctx.invoker, id=user_id, name=user_id, role_ids=(), is_moderator=False)
    found = await ctx.directory.lookup_user(workspace, user_id)
    if found is None and must_exist:
        raise CommandError(f"I can't find {mention(user_id)} here; please check the mention.")
    if found is not None and found.is_bot:
        raise CommandError(f"{mention(user_id)} is a bot; access is for people.")
    return found or dataclasses.replace(
        ctx.invoker, id=user_id, name=user_id, role_ids=(), is_moderator=False
    )


def _long(text: str, filename: str, summary: str) -> CommandResult:
    if len(text) <= INLINE_CHARS:
        return CommandResult(text)
    return CommandResult(summary, attachment=(filename, text))


# ---------------------------------------------------------------- members


async def request(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    text = await _service(ctx).request(_invoker(ctx), _workspace(ctx), args.get("reason", ""))
    return CommandResult(text)


async def withdraw(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    return CommandResult(await _service(ctx).withdraw(_invoker(ctx), _workspace(ctx)))


async def status(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    user_id = args.get("user", ctx.invoker.id)
    own = user_id == ctx.invoker.id
    if not own and not ctx.invoker.is_moderator:
        raise NotModerator()
    who = ctx.invoker if own else await _target(ctx, user_id, must_exist=False)
    service = _service(ctx)
    standing = await service.standing(who, ctx.place)
    return CommandResult(_describe(service, standing, who.id, own, ctx.place.platform))


def _describe(service: AccessService, standing: Standing, user_id: str, own: bool, platform: str) -> str:
    model = service.model_name
    subject, have = ("You", "have") if own else (mention(user_id), "has")
    if standing.via == "grant" and standing.grant is not None:
        grant = standing.grant
        until = f"until {when_text(grant.expires_at)}" if grant.expires_at else "with no end date"
        return f"{subject} {have} access to {model} here {until}, granted by {mention(grant.granted_by)}."
    reasons = {
        "operator": "This is the operator's terminal, where access rules don't apply.",
        "open": f"Everyone may talk with {model} here.",
        "bot": f"{subject} may talk with {model}, because bots are allowed here.",
        "moderator": f"{subject} may always talk with {model}: moderators may.",
        "role": f"{subject} may talk with {model} here through a member role.",
        "grant": f"{subject} may talk with {model} here through access in a {space_word(platform)} where I live.",
    }
    if standing.via:
        return reasons[standing.via]
    if standing.pending is not None:
        whose = "Your" if own else f"{mention(user_id)}'s"
        return f"{whose} request from {when_text(standing.pending.created_at)} is waiting for the moderators."
    lacks = "You don't have" if own else f"{mention(user_id)} doesn't have"
    text = f"{lacks} access to {model} here."
    if own and service.mode == "request":
        text += f" You can ask with `{service.command(platform)} access request [reason]`."
    return text


# ---------------------------------------------------------------- moderators


async def grant(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    target = await _target(ctx, args["user"], must_exist=True)
    text = await _service(ctx).grant(
        _invoker(ctx), _workspace(ctx), target.id, args.get("days"), args.get("note", "")
    )
    return CommandResult(text)


async def deny(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    target = await _target(ctx, args["user"], must_exist=False)
    text = await _service(ctx).deny(_invoker(ctx), _workspace(ctx), target.id, args.get("reason", ""))
    return CommandResult(text)


async def revoke(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    target = await _target(ctx, args["user"], must_exist=False)
    service = _service(ctx)
    try:
        text = await service.revoke(_invoker(ctx), _workspace(ctx), target.id, args.get("reason", ""))
    except CommandError as error:
        roles = set(ctx.runtime.settings.access.member_roles)
        if roles.intersection(target.role_ids):
            raise CommandError(
                f"{error} They may chat through a member role; change their roles to stop that."
            ) from None
        raise
    return CommandResult(text)


async def pending(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    requests = await _service(ctx).pending(ctx.invoker.platform, _workspace(ctx))
    if not requests:
        return CommandResult("No requests are waiting.")
    lines = [f"{len(requests)} waiting (approve with the buttons or `access grant`):"]
    lines += [_request_line(r) for r in requests]
    return _long(
        "\n".join(lines), "pending.txt", f"{len(requests)} requests are waiting; the list is attached."
    )


def _request_line(request: RequestView) -> str:
    reason = f' — "{request.reason}"' if request.reason else ""
    return f"#{request.id} {mention(request.user_id)}, asked {when_text(request.created_at)}{reason}"


async def list_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    service = _service(ctx)
    grants = await service.grants(ctx.invoker.platform, _workspace(ctx))
    if not grants:
        return CommandResult("Nobody has a grant here yet.")
    now = service.now()
    lines = [f"{len(grants)} with access:"] + [grant_line(g, now) for g in grants]
    return _long("\n".join(lines), "access.txt", f"{len(grants)} people have access; the list is attached.")


def grant_line(grant: GrantView, now: datetime) -> str:
    if grant.expires_at is None:
        until = "no end date"
    else:
        until = f"expires {when_text(grant.expires_at)} ({in_text(grant.expires_at - now)})"
    note = f' — "{grant.note}"' if grant.note else ""
    return f"{mention(grant.user_id)}: {until}, granted by {mention(grant.granted_by)}{note}"


async def log(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    user_id = args.get("user")
    entries = await _service(ctx).audit_log(ctx.invoker.platform, _workspace(ctx), user_id)
    if not entries:
        return CommandResult("Nothing has been recorded yet.")
    lines = ["Newest first:"] + [_audit_line(e) for e in entries]
    return _long("\n".join(lines), "access-log.txt", f"The last {len(entries)} changes are attached.")


def _audit_line(entry: AuditEntry) -> str:
    detail = f" ({entry.detail})" if entry.detail else ""
    target = "" if entry.target_id == entry.actor_id else f" → {mention(entry.target_id)}"
    return f"{when_text(entry.at)} {entry.action}: {mention(entry.actor_id)}{target}{detail}"


# ---------------------------------------------------------------- usage


async def usage_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    user_id = args.get("user", ctx.invoker.id)
    own = user_id == ctx.invoker.id
    if not own and not ctx.invoker.is_moderator:
        raise NotModerator()
    if not own:
        await _target(ctx, user_id, must_exist=False)
    service = _service(ctx)
    platform, workspace, now = ctx.place.platform, ctx.place.workspace_id, service.now()
    scope = {"platform": platform, "workspace_id": workspace}
    today = await usage.totals(service.store, **scope, since=usage.day_start(now), user_id=user_id)
    month = await usage.totals(service.store, **scope, since=usage.month_start(now), user_id=user_id)
    whose = "Your" if own else f"{mention(user_id)}'s"
    lines = [
        f"{whose} use of {service.model_name} here (UTC days and months):",
        f"Today: {_figures(today)}.",
        f"This month: {_figures(month)}.",
    ]
    limits = ctx.runtime.settings.access
    if limits.daily_messages or limits.daily_tokens:
        parts = [f"{limits.daily_messages} messages"] if limits.daily_messages else []
        parts += [f"{limits.daily_tokens:,} tokens"] if limits.daily_tokens else []
        lines.append(f"Daily limit: {' and '.join(parts)}; it resets {in_text(usage.next_day(now) - now)}.")
    if limits.monthly_spend_usd and ctx.invoker.is_moderator:
        spent = await usage.totals(service.store, **scope, since=usage.month_start(now))
        lines.append(
            f"This {space_word(platform)} has spent {usage.format_dollars(spent.cost_micros)} of its "
            f"${limits.monthly_spend_usd:,.2f} monthly budget."
        )
    return CommandResult("\n".join(lines))


def _figures(totals: usage.UsageTotals) -> str:
    messages = "1 message" if totals.requests == 1 else f"{totals.requests} messages"
    return f"{messages}, {totals.tokens:,} tokens, {usage.format_dollars(totals.cost_micros)}"


# ---------------------------------------------------------------- the table

_WHO = Param("user", "user", "the member", required=True)

ACCESS_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        ("access", "request"),
        "ask the moderators for access to the model",
        request,
        (Param("reason", "text", "why you'd like access (optional)", rest=True),),
    ),
    CommandSpec(("access", "withdraw"), "withdraw your waiting request", withdraw),
    CommandSpec(
        ("access", "status"),
        "your access here, or (moderators) someone else's",
        status,
        (Param("user", "user", "whose access to show"),),
    ),
    CommandSpec(
        ("access", "grant"),
        "give a member access, optionally for a number of days",
        grant,
        (
            _WHO,
            Param("days", "int", "how many days (none: no end date)"),
            Param("note", "text", "a note for the log", rest=True),
        ),
        moderator_only=True,
    ),
    CommandSpec(
        ("access", "deny"),
        "turn down a member's waiting request",
        deny,
        (_WHO, Param("reason", "text", "told to the member", rest=True)),
        moderator_only=True,
    ),
    CommandSpec(
        ("access", "revoke"),
        "end a member's access",
        revoke,
        (_WHO, Param("reason", "text", "told to the member", rest=True)),
        moderator_only=True,
    ),
    CommandSpec(("access", "pending"), "requests waiting for a decision", pending, moderator_only=True),
    CommandSpec(("access", "list"), "who has access here, and until when", list_, moderator_only=True),
    CommandSpec(
        ("access", "log"),
        "recent access changes, for everyone or one member",
        log,
        (Param("user", "user", "only this member's entries"),),
        moderator_only=True,
    ),
    CommandSpec(
        ("usage",),
        "your use and spend today and this month, or (moderators) someone else's",
        usage_,
        (Param("user", "user", "whose usage to show"),),
    ),
)
