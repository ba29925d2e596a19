"""A workspace's month of usage, by member and by model and backend (`/opus usage` for
moderators, `ember usage` for the operator). Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from core.store.chat_repo import replies_counted
from core.store.engine import Store
from core.store.models import Usage


@dataclass(frozen=True)
class UsageLine:
    """One member's, or one model and backend's, share of a period."""

    who: str  # a user id (a pseudonym after forget, see core.store.pseudonyms) or "alias provider model"
    replies: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_micros: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class UsageReport:
    total: UsageLine
    members: list[UsageLine]  # the most expensive first, at most `top`
    backends: list[UsageLine]  # every alias, provider and model, the most expensive first


async def usage_report(
    store: Store, *, platform: str, workspace_id: str, since: datetime, until: datetime, top: int = 10
) -> UsageReport:
    scope = (
        col(Usage.platform) == platform,
        col(Usage.workspace_id) == workspace_id,
        col(Usage.created_at) >= since,
        col(Usage.created_at) < until,
    )
    sums = _sums()
    cost = sums[-1]
    by_member = select(col(Usage.user_id), *sums).where(*scope).group_by(col(Usage.user_id))
    by_backend = (
        select(col(Usage.alias), col(Usage.provider), col(Usage.model), *sums)
        .where(*scope)
        .group_by(col(Usage.alias), col(Usage.provider), col(Usage.model))
    )
    async with store.reading() as session:
        (total,) = (await session.exec(select(*sums).where(*scope))).all()
        members = (await session.exec(by_member.order_by(cost.desc(), col(Usage.user_id)).limit(top))).all()
        backends = (await session.exec(by_backend.order_by(cost.desc()))).all()
    return UsageReport(
        _line("total", total),
        [_line(row[0], row[1:]) for row in members],
        [_line(f"{row[0]} {row[1]} {row[2]}", row[3:]) for row in backends],
    )


def _sums() -> list[Any]:
    return [
        replies_counted(),
        *(
            func.coalesce(func.sum(column), 0)
            for column in (
                col(Usage.input_tokens),
                col(Usage.output_tokens),
                col(Usage.cache_write_tokens),
                col(Usage.cache_read_tokens),
                col(Usage.cost_micros),
            )
        ),
    ]


def _line(who: str, values: Any) -> UsageLine:
    replies, input_tokens, output_tokens, written, read, cost = (int(v) for v in values)
    return UsageLine(who, replies, input_tokens, output_tokens, written, read, cost)
