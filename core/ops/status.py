"""`ember status`: one screen on how ember is doing, from the store and a running instance.

Platforms' connections are read from the running instance's `/readyz` (the store cannot know
them); everything else from the store, read-only. `attention` lists what an operator should look
at; the command exits non-zero when it is not empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

import aiohttp

from core.chat.usage import format_dollars
from core.config import Settings
from core.ops.facts import as_utc
from core.store import Store, ops_repo
from core.store.ops_repo import FeedRow, UsageDay

# An announcement owed for longer than this is stuck, not merely queued.
OWED_TOO_LONG = timedelta(minutes=30)
READYZ_TIMEOUT_SECONDS = 2.0


@dataclass
class StatusReport:
    version: str
    database: str
    platforms: dict[str, str]  # name -> "connected" | "not connected" | "no running instance"
    today: UsageDay
    deliveries: dict[str, int]
    oldest_owed: datetime | None
    feeds: list[FeedRow]
    now: datetime
    attention: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"ember {self.version}; database {self.database}"]
        for name, state in self.platforms.items() or {"platforms": "none configured"}.items():
            out.append(f"{name}: {state}")
        for backend in self.today.backends:
            out.append(
                f"backend {backend.backend}: {backend.requests} requests today, {backend.failures} failed"
            )
        out.append(
            f"today: {self.today.replies} replies, {self.today.tokens} tokens, "
            f"{format_dollars(self.today.cost_micros)}"
        )
        owed = self.deliveries.get("pending", 0) + self.deliveries.get("sending", 0)
        oldest = f", oldest since {self.oldest_owed:%Y-%m-%d %H:%M} UTC" if self.oldest_owed else ""
        out.append(f"essay deliveries owed: {owed}{oldest}; failed: {self.deliveries.get('failed', 0)}")
        out.extend(_feed_line(feed) for feed in self.feeds)
        out.extend(f"needs attention: {item}" for item in self.attention)
        return out


def _feed_line(feed: FeedRow) -> str:
    success = f"{feed.last_success_at:%Y-%m-%d %H:%M} UTC" if feed.last_success_at else "never"
    state = f"failing ({feed.failures}x: {feed.last_error})" if feed.failures else "ok"
    return f"feed {feed.url}: {state}; last success {success}"


async def platform_states(settings: Settings, configured: list[str]) -> dict[str, str]:
    """Each configured platform as the running instance's /readyz sees it."""
    if not configured:
        return {}
    server = settings.server
    unknown = dict.fromkeys(configured, "no running instance answered /readyz")
    if not server.health_port:
        return dict.fromkeys(configured, "unknown ([server] health_port = 0)")
    url = f"http://{server.host}:{server.health_port}/readyz"
    try:
        timeout = aiohttp.ClientTimeout(total=READYZ_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            body = json.loads(await response.text())
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return unknown
    seen: dict[str, bool] = body.get("platforms", {})
    return {name: "connected" if seen.get(name) else "not connected" for name in configured}


async def read_status(store: Store, settings: Settings, configured: list[str], now: datetime) -> StatusReport:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    oldest = await ops_repo.oldest_owed(store)
    report = StatusReport(
        version=_version(),
        database=store.engine.url.render_as_string(hide_password=True),
        platforms=await platform_states(settings, configured),
        today=await ops_repo.usage_since(store, midnight),
        deliveries=await ops_repo.delivery_counts(store),
        oldest_owed=as_utc(oldest) if oldest else None,
        feeds=await ops_repo.feeds(store),
        now=now,
    )
    report.attention = attention(report)
    return report


def attention(report: StatusReport) -> list[str]:
    items = [f"{name} is {state}" for name, state in report.platforms.items() if state != "connected"]
    items += [
        f"backend {b.backend} failed every request today"
        for b in report.today.backends
        if b.requests == b.failures
    ]
    if report.oldest_owed and report.now - report.oldest_owed > OWED_TOO_LONG:
        items.append("an essay announcement has been owed for over 30 minutes")
    if report.deliveries.get("failed"):
        items.append(f"{report.deliveries['failed']} essay deliveries failed (see ember essays status)")
    items += [f"feed {feed.url} is failing" for feed in report.feeds if feed.failures]
    return items


def _version() -> str:
    try:
        return version("ember")
    except PackageNotFoundError:
        return "(not installed)"
