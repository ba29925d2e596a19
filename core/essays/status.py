"""`ember essays status`: each feed's state, subscriptions, deliveries by state, the latest essay.

The counting is one read (core.store.essay_counts); this module shapes it, and
core.essays.wording writes it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from core.essays import wording
from core.essays.delivery import Announcement
from core.store.essay_records import EssayCounts, FeedRecord


@dataclass(frozen=True)
class FeedStatus:
    url: str
    state: Literal["ok", "failing", "never polled"]
    failures: int
    last_error: str
    last_success_at: datetime | None
    first_failure_at: datetime | None
    next_poll_at: datetime | None
    seeded: bool
    alerted: bool


@dataclass(frozen=True)
class EssayStatus:
    feeds: tuple[FeedStatus, ...]
    essays: int
    announced: int
    subscriptions: dict[str, int]  # enabled, per platform
    paused: int  # subscriptions ember paused (channel gone or forbidden)
    deliveries: dict[str, int]  # per state
    latest: Announcement | None
    adapters: tuple[str, ...]  # platforms with an announcer in this process
    recent_errors: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The status as a person reads it (`ember essays status`)."""
        return wording.status_lines(self)


def essay_status(
    counts: EssayCounts, feed_urls: Sequence[str], latest: Announcement | None, adapters: tuple[str, ...]
) -> EssayStatus:
    """The status of the configured feeds (`feed_urls`) and of everything counted."""
    return EssayStatus(
        feeds=tuple(feed_status(url, counts.feeds.get(url)) for url in feed_urls),
        essays=counts.essays,
        announced=counts.announced,
        subscriptions=counts.subscriptions,
        paused=counts.paused,
        deliveries=counts.deliveries,
        latest=latest,
        adapters=adapters,
        recent_errors=tuple(
            wording.failed_delivery(d.platform, d.channel_id, d.last_error) for d in counts.recent_failures
        ),
    )


def feed_status(url: str, row: FeedRecord | None) -> FeedStatus:
    if row is None or (row.last_success_at is None and not row.failures):
        return FeedStatus(url, "never polled", 0, "", None, None, None, False, False)
    return FeedStatus(
        url=url,
        state="failing" if row.failures else "ok",
        failures=row.failures,
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        first_failure_at=row.first_failure_at,
        next_poll_at=row.next_poll_at,
        seeded=row.seeded,
        alerted=row.alerted,
    )
