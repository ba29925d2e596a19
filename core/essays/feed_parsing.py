"""Reading a feed's bytes strictly, and knowing an item again.

`parse` decodes the bytes as they declare (core.essays.feed_encoding), reads them with
feedparser and refuses what is not a usable feed (malformed XML, an HTML page, no items) rather
than announcing half of it; every refusal is a FeedError. An item is known by its guid (`stable_key`) and by its post path within its newsletter
(`post_path`), so a changed guid or a moved domain does not make it new.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import feedparser

from core.errors import FeedError
from core.essays import wording
from core.essays.feed_encoding import decode
from core.essays.plain_text import clean_line, html_to_text, summarize, truncate

TITLE_CHARS = 256
# Far beyond any essay; bounds what one item can put in a discussion's context.
FULL_TEXT_CHARS = 100_000
# Past this a key is stored as its hash (the column holds 1000 characters).
KEY_CHARS = 900


@dataclass(frozen=True)
class FeedItem:
    """One item as plain text. `key` identifies it (the guid, else the link)."""

    key: str
    post_path: str | None
    title: str
    link: str
    summary: str
    author: str
    published_at: datetime | None
    image_url: str
    full_text: str


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: tuple[FeedItem, ...]  # newest first, as feeds list them


def parse(body: bytes, content_type: str = "") -> ParsedFeed:
    """Read a feed; FeedError when it is malformed, not a feed, or has no items."""
    decoded = decode(body, content_type)
    # The parser gets UTF-8 and is told so: no second guess at the encoding (core.essays.feed_encoding).
    media_type = content_type.partition(";")[0].strip()
    headers = {"content-type": media_type + "; charset=utf-8"} if media_type else None
    result = feedparser.parse(decoded.body, response_headers=headers)
    problem = result.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        # feedparser's lenient fallback would still salvage items from broken XML; a truncated
        # feed must not be announced in part.
        raise FeedError(wording.malformed_xml(problem))
    if not result.get("version"):
        raise FeedError(wording.NOT_A_FEED)
    items = tuple(item for entry in result.entries if (item := _item(entry)) is not None)
    if not items:
        raise FeedError(wording.NO_ITEMS)
    return ParsedFeed(clean_line(result.feed.get("title", "")), items)


def _item(entry: Any) -> FeedItem | None:
    link = safe_url(entry.get("link", ""))
    guid = str(entry.get("id") or "").strip() or link
    title = _title(entry)
    if not guid:
        if not title:
            return None  # nothing to know it by again
        guid = "title:" + title
    content = entry.get("content") or []
    full_text = html_to_text(content[0].get("value", "") if content else "")[:FULL_TEXT_CHARS]
    summary_text = html_to_text(entry.get("summary", ""))
    return FeedItem(
        key=stable_key(guid),
        post_path=post_path(link) or post_path(guid),
        title=title or wording.UNTITLED,
        link=link or safe_url(guid),
        summary=summarize(summary_text or full_text),
        author=clean_line(entry.get("author", ""))[:200],
        published_at=_published(entry),
        image_url=_image(entry),
        full_text=full_text or summary_text,
    )


def _title(entry: Any) -> str:
    detail = entry.get("title_detail") or {}
    raw = entry.get("title", "")
    text = html_to_text(raw) if "html" in str(detail.get("type", "")) else raw
    return truncate(clean_line(text), TITLE_CHARS)


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _image(entry: Any) -> str:
    """The cover image: an image enclosure, else a media thumbnail."""
    for enclosure in entry.get("enclosures", []):
        if str(enclosure.get("type", "")).startswith("image/") and safe_url(enclosure.get("href", "")):
            return str(enclosure["href"])
    for media in entry.get("media_thumbnail", []) or []:
        if safe_url(media.get("url", "")):
            return str(media["url"])
    return ""


# ---------------------------------------------------------------- identity


def stable_key(value: str) -> str:
    value = value.strip()
    if len(value) <= KEY_CHARS:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def post_path(url: str) -> str | None:
    """The normalised path of a post URL (`/p/on-being-retired`): the same post keeps it when
    the newsletter moves to another domain or its guid changes. None when there is none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    path = re.sub(r"/{2,}", "/", unquote(parts.path)).rstrip("/").lower()
    return stable_key(path) if path else None


def safe_url(url: Any) -> str:
    """`url` when it is an absolute http(s) URL, else "" (no javascript:, data: or relative links)."""
    if not isinstance(url, str):
        return ""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme in ("http", "https") and parts.netloc and len(url) <= 2000 else ""
