"""Recent news for the `with_news` strategy, read with the essay feeds' own fetching and parsing
(core.essays.feeds, core.essays.feed_parsing): the same deadline, size cap and strict parser. A
feed that fails is logged and left out; the essay is still written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp

from core.errors import FeedError
from core.essays import feeds
from core.essays.feed_parsing import parse
from core.studio.prompts import NewsItem

log = logging.getLogger(__name__)
DEADLINE = 30.0
MAX_BYTES = 5_000_000


async def recent_news(urls: Sequence[str], count: int) -> list[NewsItem]:
    """The `count` newest items over every feed in `urls`, newest first."""
    if not urls:
        return []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as session:
        found = await asyncio.gather(*(_read(session, url) for url in urls))
    items = [item for one in found for item in one]
    oldest = datetime.min.replace(tzinfo=UTC)
    items.sort(key=lambda item: item.published_at or oldest, reverse=True)
    return items[:count]


async def _read(session: aiohttp.ClientSession, url: str) -> list[NewsItem]:
    try:
        fetched = await feeds.fetch(session, url, deadline=DEADLINE, max_bytes=MAX_BYTES)
        if fetched.body is None:
            return []
        parsed = await asyncio.to_thread(parse, fetched.body, fetched.content_type)
    except FeedError as error:
        log.warning("studio: the news feed %s could not be read (%s); writing without it", url, error)
        return []
    return [NewsItem(i.title, i.summary, i.link, i.published_at) for i in parsed.items]
