"""The tables of essay announcements, read and written only by the essay repositories
(core.store.essays_repo, feeds_repo, subscriptions_repo, outbox_repo, essay_counts).

- essay_feeds: one row per feed URL: conditional-GET validators, whether its first poll is done
  (`seeded`), and its failure streak with the back-off and the one-time moderator alert.
- essays: every item ever seen. Identity is the guid, with (family, post_path) as a second
  unique key so a changed guid or a moved domain is recognised; dates only order items.
- essay_subscriptions: channels that want announcements, and the one role each may ping.
- essay_deliveries: the outbox. One row per (essay, subscription), written in the same
  transaction as the essay itself; a worker moves it pending → sending → sent.
- essay_threads: discussion threads opened under announcements, so a message there reaches the
  model with the essay in context.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store.models import db_now


class EssayFeed(SQLModel, table=True):
    """What ember knows about polling one feed."""

    __tablename__ = "essay_feeds"

    url: str = Field(primary_key=True, max_length=500)
    etag: str = Field(default="", max_length=300)
    last_modified: str = Field(default="", max_length=100)
    # False until the first successful poll recorded the feed's items (announcing none of them).
    seeded: bool = False
    failures: int = 0
    first_failure_at: datetime | None = None
    last_error: str = Field(default="", max_length=500)
    # The moderators were told about the current failure streak (reset by a success).
    alerted: bool = False
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None


class Essay(SQLModel, table=True):
    """One newsletter item, as plain text, whether or not it was announced."""

    __tablename__ = "essays"
    __table_args__ = (
        UniqueConstraint("guid", name="uq_essays_guid"),
        # NULL post paths (items without a URL) never collide, on SQLite and PostgreSQL alike.
        UniqueConstraint("family", "post_path", name="uq_essays_post_path"),
        Index("ix_essays_published", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    feed_url: str = Field(max_length=500)
    # The newsletter this item belongs to (its channel title): post paths are unique within it.
    family: str = Field(max_length=200)
    guid: str = Field(max_length=1000)
    post_path: str | None = Field(default=None, max_length=1000)
    title: str = Field(max_length=300)
    link: str = Field(default="", max_length=2000)
    summary: str = Field(default="", max_length=400)
    author: str = Field(default="", max_length=200)
    published_at: datetime | None = None
    image_url: str = Field(default="", max_length=2000)
    full_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # False: recorded only (first poll, or older than max_age_days) and never delivered.
    announced: bool = False
    recorded_at: datetime = Field(default_factory=db_now)


class EssaySubscription(SQLModel, table=True):
    """A channel that receives announcements. Disabled rows are kept: deliveries name them."""

    __tablename__ = "essay_subscriptions"
    __table_args__ = (
        UniqueConstraint("platform", "workspace_id", "channel_id", name="uq_essay_subscriptions_channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    # The only thing an announcement may ping; "" pings nobody.
    role_id: str = Field(default="", max_length=64)
    enabled: bool = True
    disabled_reason: str = Field(default="", max_length=500)
    # Who turned it off: a moderator's id, or "" when ember did (the channel went away).
    disabled_by: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=db_now)
    updated_at: datetime = Field(default_factory=db_now)


class EssayDelivery(SQLModel, table=True):
    """One announcement owed to one channel: the outbox row.

    state: pending → sending (claimed; the platform may be called) → sent | failed | disabled.
    `next_attempt_at` is when a pending row is due, or when a sending row's lease runs out.
    `uncertain` says an earlier attempt may have reached the platform (a crash, a timeout)."""

    __tablename__ = "essay_deliveries"
    __table_args__ = (
        UniqueConstraint("essay_id", "subscription_id", name="uq_essay_deliveries_once"),
        Index("ix_essay_deliveries_due", "platform", "state", "next_attempt_at"),
        Index("ix_essay_deliveries_subscription", "subscription_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    essay_id: int = Field(sa_column=Column(Integer, ForeignKey("essays.id"), nullable=False))
    subscription_id: int = Field(
        sa_column=Column(Integer, ForeignKey("essay_subscriptions.id"), nullable=False)
    )
    # The target as it was when the essay arrived, so every retry goes to the same place.
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    channel_id: str = Field(max_length=64)
    role_id: str = Field(default="", max_length=64)
    state: str = Field(default="pending", max_length=16)  # pending|sending|sent|failed|disabled
    attempts: int = 0
    uncertain: bool = False
    next_attempt_at: datetime = Field(default_factory=db_now)
    platform_message_id: str = Field(default="", max_length=64)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=db_now)
    sent_at: datetime | None = None


class EssayThread(SQLModel, table=True):
    """A discussion thread under an announcement: messages there bring the essay to the model."""

    __tablename__ = "essay_threads"

    platform: str = Field(primary_key=True, max_length=16)
    workspace_id: str = Field(primary_key=True, max_length=64)
    channel_id: str = Field(primary_key=True, max_length=64)
    thread_id: str = Field(primary_key=True, max_length=64)
    essay_id: int = Field(sa_column=Column(Integer, ForeignKey("essays.id"), nullable=False))
    created_at: datetime = Field(default_factory=db_now)
