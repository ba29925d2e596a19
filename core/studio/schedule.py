"""The studio's schedule: which slot is current, and when the next one begins.

A slot is one scheduled moment (UTC): every day at `time`, or every week on `day` at `time`.
Its key ("weekly:2026-03-09T09:00") is unique among drafts, so a slot is drafted once however
many hosts run (core.store.studio_repo). A slot missed by more than `CATCH_UP` (ember was down)
is left alone: a late essay is better than none, a week-old slot is not worth writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from core.config_studio import StudioSettings

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CATCH_UP = timedelta(hours=24)


@dataclass(frozen=True)
class Slot:
    key: str
    at: datetime


def _at(studio: StudioSettings) -> time:
    hours, minutes = studio.time.split(":")
    return time(int(hours), int(minutes))


def current_slot(studio: StudioSettings, now: datetime) -> Slot | None:
    """The latest slot at or before `now` (None with `schedule = "off"`)."""
    if studio.schedule == "off":
        return None
    at = datetime.combine(now.date(), _at(studio), tzinfo=now.tzinfo)
    if studio.schedule == "weekly":
        at -= timedelta(days=(now.weekday() - DAYS.index(studio.day)) % 7)
    step = timedelta(days=7 if studio.schedule == "weekly" else 1)
    if at > now:
        at -= step
    return Slot(f"{studio.schedule}:{at:%Y-%m-%dT%H:%M}", at)


def next_slot_at(studio: StudioSettings, now: datetime) -> datetime | None:
    slot = current_slot(studio, now)
    if slot is None:
        return None
    return slot.at + timedelta(days=7 if studio.schedule == "weekly" else 1)


def due(studio: StudioSettings, now: datetime) -> Slot | None:
    """The slot to draft now, if it is recent enough to be worth writing."""
    slot = current_slot(studio, now)
    return slot if slot is not None and now - slot.at <= CATCH_UP else None
