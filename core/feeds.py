"""Newsletter feeds: fetch politely, parse strictly, and turn HTML into plain text.

`fetch` is one conditional GET (ETag / Last-Modified) with a total deadline, a size cap, a
User-Agent naming ember, and redirects followed by hand so that only http(s) targets are
allowed. `parse` reads the bytes with feedparser and refuses what is not a usable feed
(malformed XML, an HTML page, no items) rather than announcing half of it. Every failure is a
FeedError, so the caller backs that one feed off and carries on.

Text is plain: `html_to_text` keeps paragraphs and list items and drops markup, scripts and
styles; nothing is escaped for any platform (adapters do that when they render).
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import re
import xml.sax
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import feedparser
from yarl import URL

from core.errors import FeedError

USER_AGENT = "ember/0.1 (essay announcements for Discord and Slack communities; feed reader)"
ACCEPT = "application/rss+xml, application/atom+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
MAX_REDIRECTS = 5
SUMMARY_CHARS = 300
TITLE_CHARS = 256
# Far beyond any essay; bounds what one item can put in a discussion's context.
FULL_TEXT_CHARS = 100_000
# Past this a key is stored as its hash (the column holds 1000 characters).
KEY_CHARS = 900

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newlines (includes no-break spaces)
_BLANK_LINES = re.compile(r"\n{3,}")


# ---------------------------------------------------------------- fetching


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
        raise FeedError(f"no complete answer within {deadline:g} s") from None
    except aiohttp.ClientError as exc:
        raise FeedError(f"could not fetch: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:  # yarl: an unparseable URL or Location header
        raise FeedError(f"bad URL: {exc}") from None


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
            raise FeedError(f"refusing to follow a redirect to a non-http(s) URL ({url.scheme}:)")
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
    raise FeedError(f"more than {MAX_REDIRECTS} redirects")


def _status_error(response: aiohttp.ClientResponse) -> FeedError:
    status = f"HTTP {response.status} {response.reason or ''}".strip()
    if response.status == 403:
        # Substack answers 403 to some hosting networks; the fix is on the operator's side.
        status += " (the feed's host refuses this network; some hosts block data-centre addresses)"
    return FeedError(status, retry_after=retry_after_seconds(response.headers.get("Retry-After", "")))


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    too_big = FeedError(f"the feed is larger than the {max_bytes:,}-byte limit")
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
    """Retry-After as seconds: either a number or an HTTP date. None when absent or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# ---------------------------------------------------------------- parsing


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
    headers = {"content-type": content_type} if content_type else None
    result = feedparser.parse(body, response_headers=headers)
    problem = result.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        # feedparser's lenient fallback would still salvage items from broken XML; a truncated
        # feed must not be announced in part.
        raise FeedError(f"malformed XML: {problem}")
    if not result.get("version"):
        raise FeedError("the response is not an RSS or Atom feed (an HTML page?)")
    items = tuple(item for entry in result.entries if (item := _item(entry)) is not None)
    if not items:
        raise FeedError("the feed has no items")
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
        title=title or "(untitled)",
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


# ---------------------------------------------------------------- text


class _TextExtractor(HTMLParser):
    """HTML → text: paragraphs become blank-line separated, list items bullets, markup goes."""

    BLOCKS = frozenset(
        [
            "address",
            "article",
            "aside",
            "blockquote",
            "dd",
            "div",
            "dl",
            "dt",
            "figcaption",
            "figure",
            "footer",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "header",
            "hr",
            "main",
            "nav",
            "ol",
            "p",
            "pre",
            "section",
            "table",
            "tr",
            "ul",
        ]
    )
    HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe", "button"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.HIDDEN:  # <svg/> hides nothing
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment; entities decoded, whitespace tidied, no markup left."""
    if not html:
        return ""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return tidy("".join(extractor.parts))


def tidy(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_line(text: Any) -> str:
    """One line of plain text: control characters gone, whitespace collapsed."""
    return " ".join(_CONTROL.sub("", str(text or "")).split())


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary where one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def summarize(text: str, limit: int = SUMMARY_CHARS) -> str:
    """One paragraph of at most `limit` characters."""
    return truncate(clean_line(text), limit)
