"""A press of a draft preview's buttons (Approve, Veto, or the reason a Veto asked for): only
reviewers decide, the first decision that settles the draft wins, and everyone else hears what
happened. The adapter hands over a `PressedStudioButton`; the facade calls `press`."""

from __future__ import annotations

from core.ports import PressedStudioButton
from core.store.studio_records import DraftState, Verdict
from core.studio import wording
from core.studio.preview import Action, parse_studio_button_id, studio_button_id
from core.studio.service import StudioService


async def press(studio: StudioService, pressed: PressedStudioButton) -> None:
    """Approve, Veto (which asks for a reason first) or the reason given."""
    parsed = parse_studio_button_id(pressed.button_id)
    if parsed is None:
        return
    action, draft_id = parsed
    if not studio.may_review(pressed.presser):
        await pressed.tell_presser(wording.NOT_A_REVIEWER)
        return
    if action is Action.VETO:
        draft = await studio.draft(draft_id)
        if draft is not None and draft.state is DraftState.PENDING:
            # The form must be the press's first answer (Discord allows three seconds);
            # the decision is made when the reason comes back.
            form = studio_button_id(Action.REASON, draft_id)
            await pressed.ask_reason(form, wording.VETO_TITLE, wording.VETO_LABEL)
            return
    verdict = Verdict.APPROVE if action is Action.APPROVE else Verdict.VETO
    decided = await studio.decide(pressed.presser, draft_id, verdict, pressed.reason)
    draft = decided.result.draft if decided.result is not None else None
    if draft is not None and draft.state is not DraftState.PENDING and not decided.settled:
        # Settled earlier (a command, another preview): this one says so. Settled now, every
        # posted preview of the draft, this one too, was edited already.
        await pressed.retire_preview(wording.settled_summary(draft))
    await pressed.tell_presser(decided.text)
