"""`/opus studio pending|show|approve|veto`: the same on every platform.

Anyone may run them, but only reviewers are answered with drafts or may decide them; anyone else
is told so, privately. `show` sends the draft's text as a file: exactly what the model wrote.
"""

from __future__ import annotations

from typing import Any

from core.commands import CommandContext, CommandResult, CommandSpec, Param
from core.errors import CommandError
from core.store.studio_records import Verdict
from core.studio import wording
from core.studio.service import StudioService


def _studio(ctx: CommandContext) -> StudioService:
    studio: StudioService = ctx.runtime.studio
    if not studio.may_review(ctx.invoker):
        raise CommandError(wording.NOT_A_REVIEWER)
    return studio


async def pending(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    drafts = await _studio(ctx).pending()
    return CommandResult("\n".join(wording.draft_line(d) for d in drafts) or wording.NOTHING_PENDING)


async def show(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    draft = await _studio(ctx).draft(int(args["id"]))
    if draft is None:
        return CommandResult(wording.NO_SUCH_DRAFT)
    return CommandResult(wording.shown(draft), attachment=(f"draft-{draft.id}.txt", draft.text))


async def approve(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    decided = await _studio(ctx).decide(ctx.invoker, int(args["id"]), Verdict.APPROVE)
    return CommandResult(decided.text)


async def veto(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    decided = await _studio(ctx).decide(
        ctx.invoker, int(args["id"]), Verdict.VETO, str(args.get("reason") or "")
    )
    return CommandResult(decided.text)


_ID = Param("id", "int", "the draft's number", required=True)

STUDIO_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(("studio", "pending"), "essay drafts waiting for review (reviewers)", pending),
    CommandSpec(("studio", "show"), "an essay draft, whole (reviewers)", show, (_ID,)),
    CommandSpec(("studio", "approve"), "approve an essay draft (reviewers)", approve, (_ID,)),
    CommandSpec(
        ("studio", "veto"),
        "veto an essay draft, with the reason (reviewers)",
        veto,
        (_ID, Param("reason", "text", "why it should not be published", required=True, rest=True)),
    ),
)
