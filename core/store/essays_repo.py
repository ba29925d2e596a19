"""The essays and essay_threads tables: what ember remembers of the newsletter, and where each
essay is discussed. Recording an essay owes it to every subscribed channel in the same
transaction (core.store.outbox_repo)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, false, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from core.store.engine import Store
from core.store.essay_records import EssayRecord, NewEssay
from core.store.essay_tables import Essay, EssayThread
from core.store.outbox_repo import owe_to_subscribers
from core.store.studio_tables import StudioDraft

log = logging.getLogger(__name__)


class EssaysRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def known(
        self, family: str, keys: Sequence[str], paths: Sequence[str]
    ) -> tuple[set[str], set[str]]:
        """Which of `keys` (guids), and of `paths` (post paths in newsletter `family`), are known."""
        query = select(Essay.guid, Essay.family, Essay.post_path).where(
            or_(
                col(Essay.guid).in_(keys),
                and_(col(Essay.family) == family, col(Essay.post_path).in_(paths)),
            )
        )
        async with self._store.reading() as session:
            rows = (await session.exec(query)).all()
        wanted = set(keys)
        guids = {guid for guid, _, _ in rows if guid in wanted}
        known_paths = {path for _, fam, path in rows if fam == family and path}
        return guids, known_paths

    async def record(self, new: NewEssay, now: datetime) -> int | None:
        """Remember a new essay and, when it is announced, owe it to every enabled subscription,
        in one transaction. Returns the deliveries queued, or None when it was already known (a
        known post under a new guid has its guid and link updated, and is not announced again)."""
        try:
            async with self._store.session() as session:
                query = select(Essay).where(_matches(new.family, new.guid, new.post_path)).limit(2)
                known = list((await session.exec(query)).all())
                if known:
                    _follow_moved(known, new)
                    return None
                essay = essay_row(new, now)
                session.add(essay)
                await session.flush()
                return await owe_to_subscribers(session, essay.id or 0, now) if new.announced else 0
        except IntegrityError:
            return None  # another host recorded it first, with its deliveries

    async def get(self, essay_id: int) -> EssayRecord | None:
        """The essay, and whether the studio wrote it (its announcements carry the disclaimer)."""
        query = (
            select(Essay, StudioDraft.id)
            .outerjoin(StudioDraft, col(StudioDraft.essay_id) == col(Essay.id))
            .where(col(Essay.id) == essay_id)
        )
        async with self._store.session() as session:
            found = (await session.exec(query)).first()
        if found is None:
            return None
        essay, draft_id = found
        return dataclasses.replace(essay_record(essay), from_studio=draft_id is not None)

    async def latest(self) -> EssayRecord | None:
        """The most recent essay (announced or not), by publication date."""
        query = (
            select(Essay).order_by(col(Essay.published_at).desc().nulls_last(), col(Essay.id).desc()).limit(1)
        )
        async with self._store.session() as session:
            essay = (await session.exec(query)).first()
        return essay_record(essay) if essay else None

    async def discussed_in(
        self, platform: str, workspace_id: str, channel_id: str, thread_id: str
    ) -> EssayRecord | None:
        """The essay whose discussion thread this is, if it is one. On the chat path: a read
        that does not wait for the writers' turn."""
        query = (
            select(Essay)
            .join(EssayThread, col(EssayThread.essay_id) == col(Essay.id))
            .where(
                col(EssayThread.platform) == platform,
                col(EssayThread.workspace_id) == workspace_id,
                col(EssayThread.channel_id) == channel_id,
                col(EssayThread.thread_id) == thread_id,
            )
        )
        async with self._store.reading() as session:
            essay = (await session.exec(query)).first()
        return essay_record(essay) if essay else None

    async def remember_thread(
        self, essay_id: int, platform: str, workspace_id: str, channel_id: str, thread_id: str, now: datetime
    ) -> None:
        row = {
            "platform": platform,
            "workspace_id": workspace_id,
            "channel_id": channel_id,
            "thread_id": thread_id[:64],
            "essay_id": essay_id,
            "created_at": now,
        }
        async with self._store.session() as session:
            await session.exec(self._store.insert(EssayThread).values(row).on_conflict_do_nothing())


def essay_record(essay: Essay) -> EssayRecord:
    return EssayRecord(
        id=essay.id or 0,
        title=essay.title,
        link=essay.link,
        summary=essay.summary,
        author=essay.author,
        published_at=essay.published_at,
        image_url=essay.image_url,
        full_text=essay.full_text,
    )


def _matches(family: str, key: str, path: str | None) -> ColumnElement[bool]:
    by_path = and_(col(Essay.family) == family, col(Essay.post_path) == path) if path else false()
    return or_(col(Essay.guid) == key, by_path)


def _follow_moved(known: list[Essay], new: NewEssay) -> None:
    """The post is known by its path under another guid: remember the new guid and link (the
    session is still open, so the change commits with it)."""
    if len(known) == 1 and known[0].guid != new.guid:
        essay = known[0]
        log.info(
            "essay %d changed its guid from %r to %r; not announcing it again", essay.id, essay.guid, new.guid
        )
        essay.guid, essay.feed_url = new.guid, new.feed_url
        essay.link = new.link or essay.link


def essay_row(new: NewEssay, now: datetime) -> Essay:
    return Essay(
        feed_url=new.feed_url,
        family=new.family,
        guid=new.guid,
        post_path=new.post_path,
        title=new.title[:300],
        link=new.link,
        summary=new.summary,
        author=new.author,
        published_at=new.published_at,
        image_url=new.image_url,
        full_text=new.full_text,
        announced=new.announced,
        recorded_at=now,
    )
