"""Who decides drafts, and what a decision does.

Reviewers are named per platform in `[studio.<platform>]`: role ids (Discord) or user-group ids
(Slack), and user ids. Membership is what the platform proved when the adapter built the `User`
(its `role_ids`: Discord roles, the Slack user groups ember reads), exactly as moderators are
proven for access by request. Reviewers approve or veto; nobody edits. A veto needs a reason.
The first decision that settles a draft wins (core.store.studio_repo); anyone deciding later is
told what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config_studio import StudioSettings
from core.events import User
from core.store.studio_records import DecisionResult, Reviewer, Verdict
from core.studio import wording


def is_reviewer(studio: StudioSettings, user: User) -> bool:
    section = studio.reviewing(user.platform)
    if section is None:
        return False
    return user.id in section.reviewer_users or bool(set(section.reviewer_group_ids) & set(user.role_ids))


def reviewer_of(user: User) -> Reviewer:
    return Reviewer(user.platform, user.workspace_id, user.id, user.name)


@dataclass(frozen=True)
class Decided:
    """What a reviewer is told, and whether the draft's preview should now show its outcome."""

    text: str
    settled: bool
    result: DecisionResult | None = None


def answer(result: DecisionResult, quorum: int) -> Decided:
    draft = result.draft
    if draft is None:
        return Decided(wording.NO_SUCH_DRAFT, settled=False)
    if result.already is not None:
        return Decided(wording.already_yours(draft, result.already.value), settled=False, result=result)
    if not result.recorded:
        return Decided(wording.already_settled(draft), settled=False, result=result)
    return Decided(wording.decided(draft, result.settled, quorum), settled=result.settled, result=result)


def needs_reason(verdict: Verdict, reason: str) -> bool:
    return verdict is Verdict.VETO and not reason.strip()
