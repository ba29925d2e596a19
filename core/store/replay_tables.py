"""Signed platform requests already handled (Slack's HTTP mode), so a replay is handled once.

A request's signature is unique to its body and timestamp, and the timestamp is honoured for
five minutes: a row older than that can never match again and is deleted by the next insert.
Written only by core.store.replays_repo; shared by every host, like the rest of the store.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.store.models import db_now


class SeenRequest(SQLModel, table=True):
    __tablename__ = "seen_requests"

    # e.g. "slack:v0=<64 hex digits>"
    key: str = Field(primary_key=True, max_length=100)
    seen_at: datetime = Field(default_factory=db_now, index=True)
