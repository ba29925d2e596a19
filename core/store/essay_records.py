"""What the essay repositories hand out and take in: frozen values, never live ORM rows.

core.essays works with these alone, so it needs neither SQLAlchemy nor a session; a value read
here is a snapshot and changing the database takes a repository call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FeedRecord:
    """What ember knows about polling one feed (a row of essay_feeds)."""

    url: str
    etag: str = ""
    last_modified: str = ""
    seeded: bool = False  # its first successful poll recorded its items
    failures: int = 0
    first_failure_at: datetime | None = None
    last_error: str = ""
    alerted: bool = False  # the moderators were told about the current failure streak
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None


@dataclass(frozen=True)
class NewEssay:
    """One feed item to remember, as plain text."""

    feed_url: str
    family: str  # the newsletter (its feed's title): post paths are unique within it
    guid: str
    post_path: str | None
    title: str
    link: str
    summary: str
    author: str
    published_at: datetime | None
    image_url: str
    full_text: str
    announced: bool  # False: recorded only, never delivered


@dataclass(frozen=True)
class EssayRecord:
    """A remembered essay, as announcements and discussions show it."""

    id: int
    title: str
    link: str
    summary: str
    author: str
    published_at: datetime | None
    image_url: str
    full_text: str = field(repr=False)
    # Written by the model in ember's own studio (core.studio), not read from a newsletter.
    from_studio: bool = False


@dataclass(frozen=True)
class SubscriptionView:
    """A channel that announces essays (or did, until ember paused it)."""

    platform: str
    workspace_id: str
    channel_id: str
    role_id: str
    enabled: bool
    disabled_reason: str


@dataclass(frozen=True)
class ClaimedRow:
    """A delivery row one worker holds for one attempt (its lease is in the database)."""

    id: int
    essay_id: int
    subscription_id: int
    platform: str
    workspace_id: str
    channel_id: str
    role_id: str
    attempts: int
    uncertain: bool


@dataclass(frozen=True)
class FailedDelivery:
    platform: str
    channel_id: str
    last_error: str


@dataclass(frozen=True)
class EssayCounts:
    """Everything `ember essays status` counts, read in one transaction."""

    feeds: dict[str, FeedRecord]  # by url: every feed ever polled
    essays: int
    announced: int
    subscriptions: dict[str, int]  # enabled, per platform
    paused: int  # subscriptions ember paused (channel gone or forbidden)
    deliveries: dict[str, int]  # per state
    recent_failures: tuple[FailedDelivery, ...]  # newest first
