"""What a platform adapter is handed to show a draft to its reviewers, and the ids of the
buttons under it. The ids say everything (`ember:studio:<action>:<draft id>`), so a press after
a restart, on any host, still reaches the draft."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

PREFIX = "ember:studio"


class Action(StrEnum):
    APPROVE = "approve"
    VETO = "veto"  # asks the presser for a reason
    REASON = "reason"  # the reason, given (a Discord modal, a Slack view)


def studio_button_id(action: Action, draft_id: int) -> str:
    return f"{PREFIX}:{action.value}:{draft_id}"


def parse_studio_button_id(custom_id: str) -> tuple[Action, int] | None:
    head, _, rest = custom_id.rpartition(":")
    prefix, _, action = head.rpartition(":")
    if prefix != PREFIX or not rest.isdigit():
        return None
    try:
        return Action(action), int(rest)
    except ValueError:
        return None


@dataclass(frozen=True)
class DraftPreview:
    """One draft for one platform's review channel.

    `header` is core-written neutral markup (core.markup); `text` is the model's essay exactly
    as written: plain text the adapter must show without letting it ping anyone or hide a link.
    Post the header with two buttons (`approve_id`, `veto_id`), and the whole text beneath it
    (in a thread, or as a file when long)."""

    draft_id: int
    channel_id: str
    header: str
    title: str
    text: str = field(repr=False)
    approve_label: str = "Approve"
    veto_label: str = "Veto"
    # An earlier attempt may have posted it, in part: a claim that lapsed (its host stopped), or
    # a post that failed part-way.
    uncertain: bool = False

    @property
    def approve_id(self) -> str:
        return studio_button_id(Action.APPROVE, self.draft_id)

    @property
    def veto_id(self) -> str:
        return studio_button_id(Action.VETO, self.draft_id)
