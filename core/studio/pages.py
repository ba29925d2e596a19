"""ember's own feed and pages of published essays: Atom at /essays/feed.xml, a plain HTML page
at /essays/<slug>, and the exact text at /essays/<slug>.txt.

Everything the model wrote is escaped (ElementTree for the feed, html.escape for the page): an
essay is shown as text, never as markup. The disclaimer goes with every essay: the feed's
subtitle and each entry's rights line, and a line on each page.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from core.config import Settings
from core.store.studio_records import PublishedEssay
from core.studio.publication import FEED_PATH, base_url, entry_id, essay_path

ATOM = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


def _utc(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` as the feed can carry it: a character XML cannot hold at all shows as U+FFFD (the
    exact text is always at /essays/<slug>.txt); everything else is unchanged."""
    return _NOT_XML.sub("\ufffd", text)


def _add(parent: ET.Element, tag: str, text: str = "", **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text:
        element.text = xml_safe(text)
    return element


def atom_feed(settings: Settings, essays: Sequence[PublishedEssay], now: datetime) -> bytes:
    """The Atom feed of `essays` (newest first)."""
    ET.register_namespace("", ATOM)
    base = base_url(settings)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _add(feed, "id", base + FEED_PATH)
    _add(feed, "title", settings.studio.title)
    _add(feed, "subtitle", settings.studio.disclaimer)
    _add(feed, "updated", _utc(essays[0].published_at if essays else now))
    _add(feed, "link", rel="self", type="application/atom+xml", href=base + FEED_PATH)
    _add(feed, "link", rel="alternate", type="text/html", href=base + "/essays/")
    _add(feed, "generator", "ember")
    for essay in essays:
        entry = _add(feed, "entry")
        _add(entry, "id", entry_id(essay.uid))
        _add(entry, "title", essay.title)
        _add(entry, "updated", _utc(essay.published_at))
        _add(entry, "published", _utc(essay.published_at))
        _add(_add(entry, "author"), "name", essay.author)
        _add(entry, "link", rel="alternate", type="text/html", href=base + essay_path(essay.slug))
        _add(entry, "rights", settings.studio.disclaimer)
        _add(entry, "content", essay.text, type="text")
    written: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return written


def essay_page(settings: Settings, essay: PublishedEssay) -> str:
    """One essay as a plain HTML page: its paragraphs, its date, the disclaimer."""
    e = html.escape
    paragraphs = "\n".join(
        f"<p>{e(block).replace(chr(10), '<br>')}</p>" for block in essay.text.split("\n\n") if block.strip()
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(essay.title)}</title>
<link rel="alternate" type="application/atom+xml" title="{e(settings.studio.title)}" href="{e(FEED_PATH)}">
<style>body{{max-width:40em;margin:2em auto;padding:0 1em;font-family:Georgia,serif;line-height:1.55}}
.disclaimer{{font-style:italic;color:#555;border-top:1px solid #ccc;padding-top:1em}}</style>
</head>
<body>
<article>
<p><small>{e(essay.author)} · {essay.published_at:%d %B %Y}</small></p>
{paragraphs}
</article>
<p class="disclaimer">{e(settings.studio.disclaimer)}</p>
<p><a href="{e(FEED_PATH)}">Feed</a> · <a href="{e(essay_path(essay.slug))}.txt">Text</a></p>
</body>
</html>
"""


def index_page(settings: Settings, essays: Sequence[PublishedEssay]) -> str:
    e = html.escape
    items = "\n".join(
        f'<li><a href="{e(essay_path(x.slug))}">{e(x.title)}</a> · {x.published_at:%d %B %Y}</li>'
        for x in essays
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{e(settings.studio.title)}</title>
<link rel="alternate" type="application/atom+xml" href="{e(FEED_PATH)}"></head>
<body>
<h1>{e(settings.studio.title)}</h1>
<ul>
{items}
</ul>
<p class="disclaimer"><em>{e(settings.studio.disclaimer)}</em></p>
</body>
</html>
"""
