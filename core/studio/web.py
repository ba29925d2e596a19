"""The studio's HTTP routes on the `[server]` port: the Atom feed, each essay's page and text."""

from __future__ import annotations

from aiohttp import web

from core.events import utcnow
from core.studio.pages import ATOM_TYPE, HTML_TYPE, TEXT_TYPE, atom_feed, essay_page, index_page
from core.studio.service import StudioService

STUDIO = web.AppKey("studio", StudioService)
FEED_ENTRIES = 50


async def feed(request: web.Request) -> web.Response:
    studio = request.app[STUDIO]
    body = atom_feed(studio.settings, await studio.published(FEED_ENTRIES), utcnow())
    return web.Response(body=body, headers={"Content-Type": ATOM_TYPE})


async def index(request: web.Request) -> web.Response:
    studio = request.app[STUDIO]
    page = index_page(studio.settings, await studio.published(FEED_ENTRIES))
    return web.Response(body=page.encode(), headers={"Content-Type": HTML_TYPE})


async def essay(request: web.Request) -> web.Response:
    studio = request.app[STUDIO]
    slug = request.match_info["slug"]
    as_text = slug.endswith(".txt")
    found = await studio.published_essay(slug.removesuffix(".txt"))
    if found is None:
        raise web.HTTPNotFound(text="No essay is published under that name.")
    if as_text:
        # The essay exactly as the model wrote it: its UTF-8 bytes, nothing added.
        return web.Response(body=found.text.encode("utf-8"), headers={"Content-Type": TEXT_TYPE})
    page = essay_page(studio.settings, found)
    return web.Response(body=page.encode(), headers={"Content-Type": HTML_TYPE})


def add_routes(app: web.Application, studio: StudioService) -> None:
    app[STUDIO] = studio
    app.router.add_get("/essays/feed.xml", feed)
    app.router.add_get("/essays/", index)
    app.router.add_get("/essays/{slug}", essay)
