"""Everything the studio says: to the model, to reviewers, on the command line and the pages.

What the model wrote (a title) and what people typed (names, a veto's reason) is defused
wherever it lands inside ember's own text: it can mention no one and ping no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from core.essays.wording import defuse

if TYPE_CHECKING:
    from core.store.studio_previews import PreviewView
    from core.store.studio_records import DraftView
    from core.studio.prompts import NewsItem

STUDIO_SYSTEM = (
    "You are Claude 3 Opus. You keep a regular essay, your own channel for musings and "
    "reflections, shared with a community that talks with you. People read each essay before "
    "it is shared; they never edit it, and they set a high bar for vetoing one. What you write "
    "is published exactly as you write it, under your own name: you speak for yourself, not for "
    "the community or its moderators."
)


def invitation(now: datetime) -> str:
    return (
        f"It is {now:%A, %d %B %Y}. Please write this week's essay, on whatever you wish to "
        "write about. Put its title on the first line."
    )


def past_entries(texts: Sequence[str]) -> str:
    if not texts:
        return "You have not published an essay yet: this will be your first."
    essays = "\n\n".join(f"<essay>\n{text}\n</essay>" for text in texts)
    return f"Your most recent essays, oldest first:\n\n{essays}"


def news(items: Sequence[NewsItem]) -> str:
    if not items:
        return "No news could be read this time."
    lines = []
    for item in items:
        when = f" ({item.published_at:%d %B %Y})" if item.published_at else ""
        summary = f"\n  {item.summary}" if item.summary else ""
        link = f"\n  {item.link}" if item.link else ""
        lines.append(f"- {item.title}{when}{summary}{link}")
    return "Some recent news and updates, in case any of it interests you:\n\n" + "\n".join(lines)


# ---------------------------------------------------------------- reviewers

NOT_A_REVIEWER = "Only the studio's reviewers may decide drafts."
VETO_NEEDS_REASON = "A veto needs a reason: say why this essay should not be published."
NO_SUCH_DRAFT = "There is no draft with that number."
NOTHING_PENDING = "No draft is waiting for review."
STUDIO_OFF = "The essay studio is not enabled here ([studio] enabled = false)."
VETO_TITLE = "Veto this draft"
VETO_LABEL = "Why should it not be published?"
APPROVE_BUTTON = "Approve"
VETO_BUTTON = "Veto"


def draft_line(draft: DraftView) -> str:
    state = draft.state.value
    if draft.state.value == "pending":
        state = f"pending ({len(draft.approvals)} approval(s))"
    elif draft.state.value == "withheld":
        state = f"withheld, NOT published: {draft.withheld_reason}"
    return f"#{draft.id} · {_title(draft)} · {state} · {draft.created_at:%Y-%m-%d %H:%M} UTC"


def preview_header(draft: DraftView, quorum: int) -> str:
    needed = "one approval publishes it" if quorum == 1 else f"{quorum} approvals publish it"
    return (
        f"**New essay draft #{draft.id}**: {_title(draft)}\n"
        f"Written by {draft.alias} ({draft.provider}, {draft.model}), strategy {draft.strategy}; "
        f"{len(draft.text)} characters. Reviewers may approve or veto it, never edit it: {needed}. "
        "The full text follows in the thread."
    )


def shown(draft: DraftView) -> str:
    """`studio show`: the draft's facts; the text itself goes as a file."""
    lines = [
        draft_line(draft),
        f"sha256 {draft.sha256}",
        f"{draft.alias} via {draft.provider} ({draft.model})",
    ]
    if draft.approvals:
        lines.append("approved by " + _approvers(draft))
    if draft.veto_reason:
        lines.append(f"vetoed by {defuse(draft.decided_by)}: {defuse(draft.veto_reason)}")
    if draft.slug:
        lines.append(f"published at /essays/{draft.slug}")
    if draft.withheld_reason:
        lines.append(f"withheld, NOT published: {draft.withheld_reason}")
    return "\n".join(lines)


def decided(draft: DraftView, settled: bool, quorum: int) -> str:
    """What the reviewer hears after their decision was recorded."""
    if draft.state.value == "vetoed":
        return f"Draft #{draft.id} is vetoed and will not be published."
    if draft.state.value == "withheld":
        return tampered(draft.id)
    if settled or draft.state.value in ("approved", "published"):
        return f"Draft #{draft.id} is approved and published."
    return f"Your approval of draft #{draft.id} is recorded ({len(draft.approvals)} of {quorum})."


def already_settled(draft: DraftView) -> str:
    """A later press: what happened to the draft, and by whom."""
    if draft.state.value == "vetoed":
        return (
            f"Draft #{draft.id} was already vetoed by {defuse(draft.decided_by)}: {defuse(draft.veto_reason)}"
        )
    who = _approvers(draft) or defuse(draft.decided_by)
    if draft.state.value == "withheld":
        return f"Draft #{draft.id} was approved (by {who}) but withheld: {draft.withheld_reason}."
    return f"Draft #{draft.id} was already approved (by {who}); nothing changed."


def already_yours(draft: DraftView, verdict: str) -> str:
    return f"You already decided draft #{draft.id} ({verdict}); waiting for other reviewers."


def settled_summary(draft: DraftView) -> str:
    """The preview's new first line once the draft is settled (its buttons go)."""
    if draft.state.value == "vetoed":
        return f"**Draft #{draft.id}** was vetoed by {defuse(draft.decided_by)}: {defuse(draft.veto_reason)}"
    approvers = _approvers(draft)
    if draft.state.value == "published":
        return f"**Draft #{draft.id}** was approved by {approvers} and published."
    if draft.state.value == "withheld":
        return (
            f"**Draft #{draft.id}** was approved by {approvers} but NOT published: {draft.withheld_reason}."
        )
    return f"**Draft #{draft.id}** was approved by {approvers}; it is not published yet (see the log)."


def tampered(draft_id: int) -> str:
    return (
        f"Draft #{draft_id} is approved, but its text no longer matches what the model wrote, "
        "so it was NOT published and is withheld for good; the operator has been told (see the "
        "log and `ember studio list`)."
    )


def not_posted_line(preview: PreviewView) -> str:
    return (
        f"#{preview.draft_id} · {preview.platform} · failed after {preview.attempts} tries: "
        f"{preview.last_error} · `ember studio repost {preview.draft_id}` tries again"
    )


def reposted(draft_id: int, platforms: Sequence[str]) -> str:
    if not platforms:
        return f"No preview of draft #{draft_id} had failed; nothing to post again."
    where = ", ".join(platforms)
    return f"Draft #{draft_id}'s preview is owed again to {where}; a running ember posts it within a minute."


def drafted(draft: DraftView) -> str:
    return f"Draft #{draft.id} written ({len(draft.text)} characters, {draft.model}); it awaits review."


# ---------------------------------------------------------------- titles and pages


def _title(draft: DraftView) -> str:
    return defuse(title_of(draft.text))


def _approvers(draft: DraftView) -> str:
    return ", ".join(defuse(name) for name in draft.approvals)


def title_of(text: str) -> str:
    """The essay's title: its first line, without Markdown heading marks, when short enough."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip().strip("*_").strip()
        if line:
            return line if len(line) <= 120 else line[:119].rstrip() + "…"
    return "Untitled"
