"""Access check latency: `AccessService.admit` with 100,000 grants and 1,000,000 usage rows.

Grants are spread over 100 workspaces (a fifth of them end on a date, some already past) and
usage over the last 90 days of those workspaces' members. Each figure is the time to enter and
leave `admit` for a member picked at random:

- grant only: the default settings (request mode, no limits): one primary-key read;
- all limits: daily messages and tokens, a monthly spend cap, one reply at a time;
- spend uncached: the same with the spend cache off, the worst case every 30 seconds;
- refused: a non-member, who is told how to ask (this path also looks for a pending request).

SQLite runs in a temporary file; PostgreSQL in a throwaway cluster (tests/fakes/postgres.py,
or the server at $EMBER_BENCH_POSTGRES_URL), skipped with the reason when neither is there. Target: p99 under 1 ms on SQLite.

Run: `.venv/bin/python -m bench access` (or `make bench BENCH=access`).
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.measure import percentile
from core.access import AccessService
from core.config import AccessSettings, Settings, settings_from_dict
from core.errors import AccessDenied
from core.events import Place, User, utcnow
from core.store import AccessGrant, Store, Usage
from tests.fakes.postgres import PostgresCluster, unavailable_reason

WORKSPACES = 100
GRANTS = 100_000
USAGE_ROWS = 1_000_000
BATCH = 20_000
WARMUP = 300
CHECKS = 5_000


# ---------------------------------------------------------------- seeding


def grant_rows(now: datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    for n in range(GRANTS):
        ending = rng.random() < 0.2
        yield {
            "platform": "discord",
            "workspace_id": f"g{n % WORKSPACES}",
            "user_id": f"u{n}",
            "status": "active",
            "granted_by": "m1",
            "note": "",
            "granted_at": now - timedelta(days=rng.randrange(1, 365)),
            "expires_at": now + timedelta(days=rng.randrange(-30, 90)) if ending else None,
            "ended_by": "",
            "ended_at": None,
            "version": 0,
        }


def usage_rows(now: datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    for _ in range(USAGE_ROWS):
        member = rng.randrange(GRANTS)
        yield {
            "created_at": now - timedelta(seconds=rng.randrange(90 * 24 * 3600)),
            "platform": "discord",
            "workspace_id": f"g{member % WORKSPACES}",
            "user_id": f"u{member}",
            "place_key": f"discord:g{member % WORKSPACES}:c1:-",
            "alias": "opus-3",
            "provider": "anthropic",
            "model": "claude-3-opus-20240229",
            "input_tokens": 1200,
            "output_tokens": 300,
            "cost_micros": 40_500,
            "trace_id": "seed",
            "outcome": "done",
        }


async def seed(store: Store, now: datetime) -> float:
    """Insert in large executemany batches; returns the seconds it took."""
    rng = random.Random(3)
    started = time.perf_counter()
    for table, rows in ((AccessGrant, grant_rows(now, rng)), (Usage, usage_rows(now, rng))):
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == BATCH:
                await _insert(store, table, batch)
                batch = []
        if batch:
            await _insert(store, table, batch)
    async with store.engine.begin() as conn:
        # Fresh planner statistics, as a database that has lived a while would have.
        await conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


async def _insert(store: Store, table: Any, batch: list[dict[str, Any]]) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(insert(table.__table__), batch)


# ---------------------------------------------------------------- measuring


async def measure(service: AccessService, members: list[User], *, expect: bool) -> list[float]:
    """Milliseconds to enter and leave the gate, per check, after a warm-up."""
    rng = random.Random(11)
    timings: list[float] = []
    for n in range(WARMUP + CHECKS):
        user = rng.choice(members)
        place = Place("discord", user.workspace_id, "c1")
        started = time.perf_counter()
        try:
            async with service.admit(user, place):
                admitted = True
        except AccessDenied:
            admitted = False
        elapsed = time.perf_counter() - started
        if n >= WARMUP and admitted == expect:
            timings.append(elapsed * 1000)
    return timings


def report(label: str, ms: list[float]) -> None:
    print(
        f"  {label:<14} p50 {statistics.median(ms):6.3f} ms   p99 {percentile(ms, 99):6.3f} ms"
        f"   ({len(ms):,} checks)",
        flush=True,
    )


async def bench(url: str, name: str) -> None:
    store = Store.open(url)
    try:
        await store.upgrade()
        now = utcnow()
        seconds = await seed(store, now)
        rows = GRANTS + USAGE_ROWS
        print(
            f"{name}: seeded {GRANTS:,} grants and {USAGE_ROWS:,} usage rows in {seconds:.1f} s "
            f"({rows / seconds:,.0f} rows/s)",
            flush=True,
        )
        base = settings_from_dict({})
        limited = AccessSettings(daily_messages=500, daily_tokens=1_000_000, monthly_spend_usd=1e6)
        # Members whose grant is live: most have no end date, the rest end in the future.
        members = [User(f"u{n}", f"member{n}", "discord", f"g{n % WORKSPACES}") for n in range(0, GRANTS, 7)]
        strangers = [User(f"x{n}", f"guest{n}", "discord", f"g{n % WORKSPACES}") for n in range(2_000)]
        services = {
            "grant only": (AccessService(base, store), members, True),
            "all limits": (AccessService(_with(base, limited), store), members, True),
            "spend uncached": (
                AccessService(_with(base, limited), store, spend_cache=timedelta(0)),
                members,
                True,
            ),
            "refused": (AccessService(base, store), strangers, False),
        }
        for label, (service, who, expect) in services.items():
            report(label, await measure(service, who, expect=expect))
    finally:
        await store.close()


def _with(settings: Settings, access: AccessSettings) -> Settings:
    return replace(settings, access=access)


# ---------------------------------------------------------------- a throwaway PostgreSQL


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """$EMBER_BENCH_POSTGRES_URL, else a cluster from tests/fakes/postgres.py, removed after.
    Raises LookupError with the reason when neither is possible."""
    if os.environ.get("EMBER_BENCH_POSTGRES_URL"):
        yield os.environ["EMBER_BENCH_POSTGRES_URL"]
        return
    reason = unavailable_reason()
    if reason is not None:
        raise LookupError(reason)
    with PostgresCluster() as cluster:
        yield cluster.url


async def run() -> None:
    print(
        f"access check: {GRANTS:,} grants in {WORKSPACES} workspaces, {USAGE_ROWS:,} usage rows "
        f"over 90 days; {CHECKS:,} checks after {WARMUP} warm-up (target: p99 under 1 ms on SQLite)",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        await bench(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", "SQLite")
    try:
        with throwaway_postgres() as url:
            await bench(url, "PostgreSQL")
    except LookupError as reason:
        print(f"PostgreSQL: skipped ({reason})")


async def main() -> None:
    await run()
