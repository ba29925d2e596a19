"""Fetching a newsletter feed politely: one conditional GET per poll.

`fetch` sends ETag / Last-Modified validators, holds one total deadline over every hop and the
body, caps the size, names ember in its User-Agent, and follows redirects by hand so that only
http(s) targets are allowed. Every failure is a FeedError, so the caller backs that one feed
off and carries on. Parsing is in core.essays.feed_parsing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from core.errors import FeedError
from core.essays import wording

USER_AGENT = "ember/0.1 (essay announcements for Discord and Slack communities; feed reader)"
ACCEPT = "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
MAX_REDIRECTS = 5
# A sane bound for any server's Retry-After (the poller waits far less: core.essays.feed_health).
RETRY_AFTER_CEILING = 366 * 24 * 3600.0

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Fetched:
    """One answer from a feed's server. `body` None means 304 Not Modified."""

    body: bytes | None
    etag: str
    last_modified: str
    content_type: str = ""


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    deadline: float = 30.0,
    max_bytes: int = 5_000_000,
) -> Fetched:
    """GET `url` conditionally; every failure (network, HTTP status, size, time) is a FeedError."""
    try:
        async with asyncio.timeout(deadline):  # one deadline for every hop and the body
            return await _follow(
                session, URL(url), _headers(etag, last_modified), max_bytes, etag, last_modified
            )
    except TimeoutError:
        raise FeedError(wording.fetch_timed_out(deadline)) from None
    except aiohttp.ClientError as exc:
        raise FeedError(wording.fetch_failed(exc)) from None
    except ValueError as exc:  # yarl: an unparseable URL or Location header
        raise FeedError(wording.bad_url(exc)) from None


def _headers(etag: str, last_modified: str) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


async def _follow(
    session: aiohttp.ClientSession,
    url: URL,
    headers: Mapping[str, str],
    max_bytes: int,
    etag: str,
    last_modified: str,
) -> Fetched:
    for _ in range(MAX_REDIRECTS + 1):
        if url.scheme not in ("http", "https"):
            raise FeedError(wording.redirect_refused(url.scheme))
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status in _REDIRECTS and "Location" in response.headers:
                url = url.join(URL(response.headers["Location"]))
                continue
            if response.status == 304:
                return Fetched(
                    None,
                    response.headers.get("ETag", etag),
                    response.headers.get("Last-Modified", last_modified),
                )
            if response.status != 200:
                raise _status_error(response)
            body = await _read_capped(response, max_bytes)
            return Fetched(
                body,
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
                response.headers.get("Content-Type", ""),
            )
    raise FeedError(wording.too_many_redirects(MAX_REDIRECTS))


def _status_error(response: aiohttp.ClientResponse) -> FeedError:
    status = wording.http_status(response.status, response.reason or "")
    return FeedError(status, retry_after=retry_after_seconds(response.headers.get("Retry-After", "")))


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_big = FeedError(wording.too_large(max_bytes))
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise too_big  # checked after decompression too, so a small gzip bomb stops here
        chunks.append(chunk)
    return b"".join(chunks)


def retry_after_seconds(value: str, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), between 0 and RETRY_AFTER_CEILING.
    None when absent or unreadable: a server's garbage is no reason to fail, nor to wait."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # "²" and "١٢" are digits to str.isdigit
        return min(float(value), RETRY_AFTER_CEILING)  # 400 digits make float() infinite
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), RETRY_AFTER_CEILING)
