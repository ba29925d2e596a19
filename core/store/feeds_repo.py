"""The essay_feeds table: each feed's validators, schedule and failure streak.

Every statement about a feed's polling state is here; core.essays decides what the values are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Update, update
from sqlmodel import col, select

from core.store.engine import Store
from core.store.essay_records import FeedRecord
from core.store.essay_tables import EssayFeed


class FeedsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def ensure(self, url: str) -> FeedRecord:
        """The feed's row, created on first sight. Several hosts may meet a new feed at once:
        the first insert wins, the rest read it."""
        async with self._store.session() as session:
            await session.exec(self._store.insert(EssayFeed).values(url=url).on_conflict_do_nothing())
            row = await session.get(EssayFeed, url)
        assert row is not None
        return feed_record(row)

    async def next_polls(self, urls: Sequence[str]) -> dict[str, datetime | None]:
        """When each known feed of `urls` is next due (None: now). Unknown feeds are absent."""
        query = select(EssayFeed.url, EssayFeed.next_poll_at).where(col(EssayFeed.url).in_(urls))
        async with self._store.session() as session:
            return {url: next_poll for url, next_poll in (await session.exec(query)).all()}

    async def record_success(
        self, url: str, now: datetime, next_poll_at: datetime, validators: tuple[str, str] | None
    ) -> None:
        """A poll worked: the failure streak ends (its alert: `end_alert`). `validators` (ETag,
        Last-Modified) are replaced when the server sent a body; None keeps the old ones."""
        values: dict[str, object] = {
            "seeded": True,
            "failures": 0,
            "first_failure_at": None,
            "last_error": "",
            "last_success_at": now,
            "next_poll_at": next_poll_at,
        }
        if validators is not None:
            etag, last_modified = validators
            values.update(etag=etag[:300], last_modified=last_modified[:100])
        async with self._store.session() as session:
            await session.exec(_update_feed(url, values))

    async def record_failure(
        self, url: str, failures: int, since: datetime, error: str, next_poll_at: datetime
    ) -> None:
        values: dict[str, object] = {
            "failures": failures,
            "first_failure_at": since,
            "last_error": error[:500],
            "next_poll_at": next_poll_at,
        }
        async with self._store.session() as session:
            await session.exec(_update_feed(url, values))

    async def claim_alert(self, url: str) -> bool:
        """Compare-and-set the feed's alert flag: True for the one host that turned it on."""
        async with self._store.session() as session:
            claimed = await session.exec(
                _update_feed(url, {"alerted": True}).where(col(EssayFeed.alerted).is_(False))
            )
        return bool(claimed.rowcount)

    async def end_alert(self, url: str) -> bool:
        """A poll worked: compare-and-clear the alert flag. True for the one host that cleared
        it (it tells the moderators the feed works again)."""
        async with self._store.session() as session:
            ended = await session.exec(
                _update_feed(url, {"alerted": False}).where(col(EssayFeed.alerted).is_(True))
            )
        return bool(ended.rowcount)

    async def release_alert(self, url: str) -> None:
        """Nobody could be told after all: let a later poll claim the alert again."""
        async with self._store.session() as session:
            await session.exec(_update_feed(url, {"alerted": False}))


def feed_record(row: EssayFeed) -> FeedRecord:
    return FeedRecord(
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        seeded=row.seeded,
        failures=row.failures,
        first_failure_at=row.first_failure_at,
        last_error=row.last_error,
        alerted=row.alerted,
        last_success_at=row.last_success_at,
        next_poll_at=row.next_poll_at,
    )


def _update_feed(url: str, values: dict[str, object]) -> Update:
    return (
        update(EssayFeed)
        .where(col(EssayFeed.url) == url)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
