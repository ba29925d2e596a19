"""`/opus access …` and `/opus usage`: access by request, the same on every platform.

Handlers only translate: they find the workspace and the target, call the AccessService, and
pick the answer's wording (core.access.command_wording). Moderator-only commands are marked in
their specs, so `Commands.run` refuses everyone else before a handler runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.access import command_wording as say
from core.access.inputs import require_workspace
from core.access.service import AccessService
from core.access.usage_wording import report_lines
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
    space = ctx.runtime.platforms.of(ctx.invoker.platform).space_word
    return require_workspace(space, ctx.place.workspace_id or ctx.invoker.workspace_id)


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
        raise CommandError(say.cannot_find(user_id))
    if found is not None and found.is_bot:
        raise CommandError(say.is_a_bot(user_id))
    return found or dataclasses.replace(
        ctx.invoker, id=user_id, name=user_id, role_ids=(), is_moderator=False
    )


def _long(text_and_summary: tuple[str, str], filename: str) -> CommandResult:
    text, summary = text_and_summary
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
    platform = ctx.place.platform
    # Only members asking about themselves, where access is by request, are told how to ask.
    ask = service.command(platform) if own and service.mode == "request" else ""
    return CommandResult(
        say.standing_text(
            standing,
            service.model_name,
            who.id,
            own=own,
            space=ctx.runtime.platforms.of(platform).space_word,
            ask=ask,
        )
    )


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
            raise CommandError(say.also_member_role(str(error))) from None
        raise
    return CommandResult(text)


async def pending(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    requests = await _service(ctx).pending(ctx.invoker.platform, _workspace(ctx))
    if not requests:
        return CommandResult(say.NO_REQUESTS)
    return _long(say.pending_text(requests), "pending.txt")


async def list_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    service = _service(ctx)
    grants = await service.grants(ctx.invoker.platform, _workspace(ctx))
    if not grants:
        return CommandResult(say.NO_GRANTS)
    return _long(say.grants_text(grants, service.now()), "access.txt")


async def log(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    user_id = args.get("user")
    entries = await _service(ctx).audit_log(ctx.invoker.platform, _workspace(ctx), user_id)
    if not entries:
        return CommandResult(say.NOTHING_RECORDED)
    return _long(say.audit_text(entries), "access-log.txt")


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
    lines = say.usage_lines(service.model_name, user_id, own=own, today=today, month=month)
    limits = ctx.runtime.settings.access
    if limits.daily_messages or limits.daily_tokens:
        lines.append(
            say.daily_limit_line(limits.daily_messages, limits.daily_tokens, usage.next_day(now) - now)
        )
    space = ctx.runtime.platforms.of(platform).space_word
    if limits.monthly_spend_usd and ctx.invoker.is_moderator:
        spent = await usage.totals(service.store, **scope, since=usage.month_start(now))
        lines.append(say.budget_line(space, spent.cost_micros, limits.monthly_spend_usd))
    if own and ctx.invoker.is_moderator:
        # Moderators see who and what the workspace's money went on this month.
        report = await usage.month_report(service.store, platform=platform, workspace_id=workspace, month=now)
        lines += ["", *report_lines(report, usage.month_start(now), space)]
    return CommandResult("\n".join(lines))


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
