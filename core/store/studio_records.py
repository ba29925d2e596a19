"""What the studio repository hands out and takes in: frozen values, never live ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class DraftState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    VETOED = "vetoed"
    PUBLISHED = "published"
    # Approved, but its text no longer matched the hash taken when the model wrote it: never
    # published, and left for the operator (terminal: nothing in ember moves it on).
    WITHHELD = "withheld"


@dataclass(frozen=True)
class NewDraft:
    """A draft as the model answered, to be kept whole."""

    uid: str
    slot: str | None
    strategy: str
    alias: str
    request_json: str
    provider: str
    model: str
    stop_reason: str
    text: str = field(repr=False)
    sha256: str
    created_by: str
    # What the answering request was billed (a usage row, so `ember status` and the metrics
    # count the studio's spend).
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_micros: int = 0
    latency_ms: int = 0


@dataclass(frozen=True)
class DraftView:
    id: int
    uid: str
    slot: str | None
    strategy: str
    alias: str
    request_json: str = field(repr=False)
    provider: str
    model: str
    stop_reason: str
    text: str = field(repr=False)
    sha256: str
    created_by: str
    created_at: datetime
    state: DraftState
    decided_at: datetime | None
    decided_by: str
    veto_reason: str
    slug: str | None
    essay_id: int | None
    published_at: datetime | None
    withheld_reason: str = ""  # why a withheld draft was not published
    approvals: tuple[str, ...] = ()  # the names of those who approved, in order


@dataclass(frozen=True)
class Reviewer:
    """Who decides, as the platform proved them."""

    platform: str
    workspace_id: str
    id: str
    name: str


class Verdict(StrEnum):
    APPROVE = "approve"
    VETO = "veto"


@dataclass(frozen=True)
class DecisionResult:
    """What one press or command did to a draft.

    - `recorded`: this reviewer's decision was written (False: they had decided it already, or
      the draft was settled before it arrived).
    - `settled`: this decision settled the draft (approved by quorum, or vetoed).
    - `draft`: the draft as it stands after the decision (None: no such draft)."""

    recorded: bool
    settled: bool
    draft: DraftView | None
    already: Verdict | None = None  # the reviewer's own earlier decision, when there was one


@dataclass(frozen=True)
class PublishedEssay:
    """An essay the studio published, as the feed and the pages show it."""

    draft_id: int
    uid: str
    slug: str
    title: str
    author: str
    text: str = field(repr=False)
    published_at: datetime
