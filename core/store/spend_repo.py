"""The workspace's spend this month, read in small steps: the usage rows written since the last
read (by primary key), so several hosts can each keep an up-to-date total cheaply."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from core.store.engine import Store
from core.store.models import Usage


class SpendRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def spent_after(
        self, platform: str, workspace_id: str, since: datetime, after_id: int
    ) -> tuple[int, int]:
        """(micros spent, the highest usage id read) over the workspace's usage rows with ids
        above `after_id`, written since `since`; `after_id` comes back when there are none."""
        query = select(func.coalesce(func.sum(col(Usage.cost_micros)), 0), func.max(col(Usage.id))).where(
            col(Usage.id) > after_id,
            col(Usage.platform) == platform,
            col(Usage.workspace_id) == workspace_id,
            col(Usage.created_at) >= since,
        )
        async with self._store.reading() as session:
            micros, highest = (await session.exec(query)).one()
        return int(micros), int(highest if highest is not None else after_id)
