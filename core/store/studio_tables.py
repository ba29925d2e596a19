"""The tables of the essay studio, read and written only by core.store.studio_repo.

- studio_drafts: one essay the model wrote: the whole request it was sent, which model and
  backend answered, the text exactly as it came, and the text's sha256 taken then. A draft
  written for a schedule slot carries the slot's key, unique, so a slot is drafted once however
  many hosts try. state: pending → approved → published, or pending → vetoed, or approved →
  withheld (its text no longer matched its hash; `withheld_reason` says so). No statement
  anywhere changes `text`.
- studio_decisions: each reviewer's approval or veto (with its reason); one per reviewer.
- studio_previews: the draft owed to each platform's review channel: pending (due at
  `updated_at`) → posting (claimed until `updated_at`) → posted (as `message_id` in
  `channel_id`); a post that failed is due again later, and after a few tries is left failed
  (`last_error` says why); once the draft is settled the posted message is edited to its
  outcome (→ shown). See core.store.studio_previews.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store.models import db_now


class StudioDraft(SQLModel, table=True):
    __tablename__ = "studio_drafts"
    __table_args__ = (
        UniqueConstraint("slot", name="uq_studio_drafts_slot"),
        UniqueConstraint("slug", name="uq_studio_drafts_slug"),
        Index("ix_studio_drafts_state", "state", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The public identity of the essay (its feed entry id is urn:uuid:<uid>).
    uid: str = Field(max_length=36)
    # The schedule slot it was written for ("weekly:2026-03-09T09:00"); None when asked for.
    slot: str | None = Field(default=None, max_length=64)
    strategy: str = Field(max_length=32)
    alias: str = Field(max_length=64)
    # The Messages API request as sent, JSON: system prompt, messages, parameters.
    request_json: str = Field(sa_column=Column(Text, nullable=False))
    provider: str = Field(max_length=16)
    model: str = Field(max_length=200)
    stop_reason: str = Field(default="", max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str = Field(max_length=64)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=db_now)
    state: str = Field(default="pending", max_length=16)  # pending|approved|vetoed|published|withheld
    decided_at: datetime | None = None
    decided_by: str = Field(default="", max_length=200)
    veto_reason: str = Field(default="", max_length=1000)
    slug: str | None = Field(default=None, max_length=120)
    essay_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("essays.id"), nullable=True)
    )
    published_at: datetime | None = None
    withheld_reason: str = Field(default="", max_length=500)


class StudioDecision(SQLModel, table=True):
    __tablename__ = "studio_decisions"
    __table_args__ = (
        UniqueConstraint("draft_id", "platform", "reviewer_id", name="uq_studio_decisions_reviewer"),
    )

    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(sa_column=Column(Integer, ForeignKey("studio_drafts.id"), nullable=False))
    platform: str = Field(max_length=16)
    workspace_id: str = Field(default="", max_length=64)
    reviewer_id: str = Field(max_length=64)
    reviewer_name: str = Field(default="", max_length=200)
    verdict: str = Field(max_length=16)  # approve|veto
    reason: str = Field(default="", max_length=1000)
    at: datetime = Field(default_factory=db_now)


class StudioPreview(SQLModel, table=True):
    __tablename__ = "studio_previews"

    draft_id: int = Field(
        sa_column=Column(Integer, ForeignKey("studio_drafts.id"), primary_key=True, nullable=False)
    )
    platform: str = Field(primary_key=True, max_length=16)
    # pending|posting|posted|failed, then showing|shown|outcome-failed (core.store.studio_previews)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    channel_id: str = Field(default="", max_length=64)
    message_id: str = Field(default="", max_length=64)
    outcome_tries: int = 0
    updated_at: datetime = Field(default_factory=db_now)
