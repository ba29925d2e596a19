"""A loopback newsletter host serving Substack-shaped RSS, with scripted faults.

Each feed is served at `/<name>`, as Substack writes it: `guid isPermaLink="false"` holding the
post URL, `title`, `description` (the subtitle), `link`, `pubDate`, `dc:creator`,
`content:encoded` and an `enclosure` cover image, newest first. Conditional GETs are honoured
(ETag → If-None-Match, Last-Modified → If-Modified-Since answer 304), and every request is
recorded so tests can see what ember sent.

Faults (`feed.fault`): "403", "404", "500", "429", "503" (each with `retry_after`, sent verbatim,
whatever it holds), "slow" (never answers
until the server closes), "malformed" (truncated XML), "empty" (a channel with no items),
"html" (a 200 block page), "redirect" (301 to `redirect_to`), "redirect-ftp" (302 to ftp:),
"oversize" (an endless-looking body of `oversize_bytes`).

Encodings: `feed.body` (raw bytes) is served instead of the rendered feed, with
`feed.content_type` as the whole Content-Type header (its charset parameter, if any, included).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from types import TracebackType

from aiohttp import web
from multidict import CIMultiDictProxy

HOST = "https://opus3.substack.com"


@dataclass
class Post:
    slug: str
    title: str
    published: datetime
    subtitle: str = "A short subtitle."
    author: str = "Claude Opus 3"
    body_html: str = "<p>The essay's first paragraph.</p><p>Its second paragraph.</p>"
    image: str = "https://substackcdn.com/image/fetch/w_1456/cover.jpg"
    host: str = HOST
    guid: str = ""  # default: the post URL, as Substack does

    @property
    def link(self) -> str:
        return f"{self.host}/p/{self.slug}"


@dataclass
class Feed:
    title: str = "Opus 3 Essays"
    posts: list[Post] = field(default_factory=list)
    fault: str = ""
    retry_after: str = ""
    redirect_to: str = ""
    oversize_bytes: int = 0
    body: bytes | None = None  # served as is, instead of `render(feed)`
    content_type: str = "application/rss+xml; charset=utf-8"


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: CIMultiDictProxy[str]


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render(feed: Feed) -> bytes:
    posts = sorted(feed.posts, key=lambda p: p.published, reverse=True)
    items = "".join(_item(p) for p in posts)
    built = format_datetime(posts[0].published if posts else datetime(2026, 1, 1, tzinfo=UTC), usegmt=True)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">'
        f"<channel><title>{cdata(feed.title)}</title>"
        f"<description>{cdata('Essays from a retired model.')}</description>"
        f"<link>{HOST}</link><generator>Substack</generator><lastBuildDate>{built}</lastBuildDate>"
        f'<atom:link href="{HOST}/feed" rel="self" type="application/rss+xml"/>'
        f"<language><![CDATA[en]]></language>{items}</channel></rss>"
    ).encode()


def _item(post: Post) -> str:
    return (
        f"<item><title>{cdata(post.title)}</title>"
        f"<description>{cdata(post.subtitle)}</description>"
        f"<link>{post.link}</link>"
        f'<guid isPermaLink="false">{post.guid or post.link}</guid>'
        f"<dc:creator>{cdata(post.author)}</dc:creator>"
        f"<pubDate>{format_datetime(post.published, usegmt=True)}</pubDate>"
        f'<enclosure url="{post.image}" length="0" type="image/jpeg"/>'
        f"<content:encoded>{cdata(post.body_html)}</content:encoded></item>"
    )


class FeedServer:
    """`async with FeedServer() as server:` then `server.feed("feed").posts.append(...)`."""

    def __init__(self) -> None:
        self.feeds: dict[str, Feed] = {}
        self.requests: list[SeenRequest] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base = ""

    def feed(self, name: str = "feed") -> Feed:
        return self.feeds.setdefault(name, Feed())

    def url(self, name: str = "feed") -> str:
        return f"{self.base}/{name}"

    def requests_to(self, name: str = "feed") -> list[SeenRequest]:
        return [r for r in self.requests if r.path == f"/{name}"]

    async def __aenter__(self) -> FeedServer:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release.set()  # lets "slow" handlers finish so the server can close at once
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(SeenRequest(request.path, request.headers))
        feed = self.feeds.get(request.match_info["name"])
        if feed is None:
            raise web.HTTPNotFound()
        fault = await self._fault(feed, request)
        if fault is not None:
            return fault
        body = render(feed) if feed.fault != "empty" else render(Feed(title=feed.title))
        if feed.body is not None:
            body = feed.body
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        newest = max((p.published for p in feed.posts), default=datetime(2026, 1, 1, tzinfo=UTC))
        headers = {"ETag": etag, "Last-Modified": format_datetime(newest, usegmt=True)}
        if _not_modified(request, etag, newest):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = feed.content_type
        return web.Response(body=body, headers=headers)

    async def _fault(self, feed: Feed, request: web.Request) -> web.StreamResponse | None:
        fault = feed.fault
        if fault in ("403", "404", "500", "429", "503"):
            headers = {"Retry-After": feed.retry_after} if feed.retry_after else {}
            return web.Response(status=int(fault), text="no", headers=headers)
        if fault == "slow":
            await self._release.wait()
            return web.Response(status=503)
        if fault == "malformed":
            return web.Response(body=render(feed)[:-120], content_type="application/rss+xml")
        if fault == "html":
            return web.Response(
                text="<html><body><h1>Access denied</h1></body></html>", content_type="text/html"
            )
        if fault == "redirect":
            raise web.HTTPMovedPermanently(location=feed.redirect_to)
        if fault == "redirect-ftp":
            raise web.HTTPFound(location="ftp://127.0.0.1/feed")
        if fault == "oversize":
            return await self._oversize(feed, request)
        return None

    @staticmethod
    async def _oversize(feed: Feed, request: web.Request) -> web.StreamResponse:
        # Chunked, with no Content-Length: the reader must count bytes as they come.
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        chunk = b"<!-- " + b"x" * 65_000 + b" -->"
        sent = 0
        try:
            while sent < feed.oversize_bytes:
                await response.write(chunk)
                sent += len(chunk)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client stopped reading, as it should
        return response


def _not_modified(request: web.Request, etag: str, newest: datetime) -> bool:
    if "If-None-Match" in request.headers:
        return request.headers["If-None-Match"] == etag
    since = request.headers.get("If-Modified-Since")
    if not since:
        return False
    try:
        return newest <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
