"""Feed items as plain text: HTML gone, summaries short, identities normalised, mentions inert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.budget import Budgets
from core.errors import FeedError
from core.essays import Announcement, EssayService, feed_encoding, feed_parsing, feeds, plain_text
from core.events import User
from core.store import Store
from tests.essay_support import FakeTime, RecordingAnnouncer, announce_unpaced, make_service, open_store, post
from tests.fakes.feed_server import Feed, FeedServer, render


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request, tmp_path, "sqlite") as store:
        yield store


def test_html_becomes_plain_text_with_paragraphs() -> None:
    html = (
        "<h2>A heading</h2><p>First &amp; <em>foremost</em>,&nbsp;a line<br>break.</p>"
        "<script>alert('x')</script><style>p{}</style>"
        "<ul><li>one</li><li>two</li></ul><p>Last.</p>"
    )
    assert (
        plain_text.html_to_text(html)
        == "A heading\n\nFirst & foremost, a line\nbreak.\n\n• one\n• two\n\nLast."
    )


def test_summaries_are_one_paragraph_of_at_most_300_characters() -> None:
    long = "<p>" + " ".join(f"word{n}" for n in range(200)) + "</p><p>more</p>"
    summary = plain_text.summarize(plain_text.html_to_text(long))
    assert len(summary) <= 300 and summary.endswith("…") and "\n" not in summary
    assert summary[:-1].split()[-1].startswith("word")  # cut between words
    assert plain_text.summarize("short") == "short"
    assert len(plain_text.summarize("x" * 1000)) == 300


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://opus3.substack.com/p/On-Being-Retired/", "/p/on-being-retired"),
        ("https://essays.example.org//p/on-being-retired?utm_source=rss#top", "/p/on-being-retired"),
        ("https://x.example/p/caf%C3%A9", "/p/café"),
        ("https://x.example/", None),
        ("urn:substack:post:1", None),
        ("javascript:alert(1)", None),
    ],
)
def test_post_paths_are_normalised(url: str, path: str | None) -> None:
    assert feed_parsing.post_path(url) == path


def test_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert feeds.retry_after_seconds("120") == 120.0
    assert feeds.retry_after_seconds("Tue, 10 Mar 2026 12:05:00 GMT", now) == 300.0
    assert feeds.retry_after_seconds("soon") is None
    assert feeds.retry_after_seconds("") is None


def test_a_substack_item_parses_into_every_field() -> None:
    feed = Feed(posts=[post(1, title="On <b>being</b> retired", subtitle="<p>Sub &amp; title</p>")])
    parsed = feed_parsing.parse(render(feed), "application/rss+xml")
    [item] = parsed.items
    assert parsed.title == "Opus 3 Essays"
    assert item.key == "https://opus3.substack.com/p/essay-1"
    assert item.post_path == "/p/essay-1"
    assert (item.title, item.summary, item.author) == ("On being retired", "Sub & title", "Claude Opus 3")
    assert item.published_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    assert item.image_url == "https://substackcdn.com/image/fetch/w_1456/cover.jpg"
    assert item.full_text == "The essay's first paragraph.\n\nIts second paragraph."


def test_unsafe_links_and_images_are_dropped() -> None:
    feed = Feed(posts=[post(1, image="javascript:alert(1)")])
    [item] = feed_parsing.parse(render(feed)).items
    assert item.image_url == ""


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "not an RSS or Atom feed"),
        (b"<html><body>Blocked</body></html>", "not an RSS or Atom feed"),
        (render(Feed()), "no items"),
        (render(Feed(posts=[post(1)]))[:-100], "malformed XML"),
    ],
)
def test_unusable_feeds_are_errors(body: bytes, problem: str) -> None:
    with pytest.raises(FeedError, match=problem):
        feed_parsing.parse(body)


async def test_html_in_descriptions_reaches_the_adapter_as_short_text(
    budgets: Budgets, store: Store, feed_server: FeedServer
) -> None:
    clock = FakeTime()
    service: EssayService = make_service(store, clock, [feed_server.url()])
    recording = RecordingAnnouncer()
    announce_unpaced(service, budgets, recording, "discord")
    mod = User("M", "M", "discord", "G1", is_moderator=True)
    await service.subscribe("discord", "G1", "C1", "", mod)
    feed_server.feed().posts.append(post(1))
    await service.poll_once()
    subtitle = "<p>Hello @everyone and <@123> &lt;!channel&gt; — " + "<b>bold</b> " * 80 + "</p>"
    feed_server.feed().posts.append(post(2, days_ago=0, title="*Stars* & @here", subtitle=subtitle))
    await service.poll_once()
    await service.deliver_pending()
    await service.close()
    [(_, delivery)] = recording.posts["C1"]
    essay = delivery.announcement
    assert "<b>" not in essay.summary and len(essay.summary) <= 300
    # Left exactly as written: escaping and mention suppression are the adapter's job.
    assert essay.summary.startswith("Hello @everyone and <@123> <!channel> — bold bold")
    assert essay.title == "*Stars* & @here"


# ---------------------------------------------------------------- encodings, end to end

TITLE = "Café — naïve, déjà vu"
SUBTITLE = "Ünïcödé «quoted»"


def encoded_feed(encoding: str, declared: str, *, title: str = TITLE) -> bytes:
    """A Substack feed whose XML declaration says `declared`, its text in `encoding`."""
    text = render(Feed(posts=[post(1, title=title, subtitle=SUBTITLE)])).decode("utf-8")
    return text.replace('encoding="UTF-8"', f'encoding="{declared}"', 1).encode(encoding)


async def first_essay(store: Store, feed_server: FeedServer, body: bytes, content_type: str) -> Announcement:
    feed = feed_server.feed()
    feed.body, feed.content_type = body, content_type
    service = make_service(store, FakeTime(), [feed_server.url()])
    [report] = await service.poll_once()
    essay = await service.latest()
    await service.close()
    assert report.ok and essay is not None, report.error
    return essay


@pytest.mark.parametrize(
    ("encoding", "declared", "content_type"),
    [
        ("utf-8", "UTF-8", "application/rss+xml; charset=utf-8"),
        ("iso-8859-1", "ISO-8859-1", "application/rss+xml"),  # the XML declaration alone says so
        ("windows-1252", "UTF-8", "application/rss+xml; charset=windows-1252"),  # the header wins
        ("windows-1252", "windows-1252", "text/xml"),  # text/xml with no charset: the declaration
        ("utf-16", "UTF-16", "application/xml"),  # a byte order mark
    ],
)
async def test_a_feed_is_read_in_the_encoding_it_declares(
    store: Store, feed_server: FeedServer, encoding: str, declared: str, content_type: str
) -> None:
    title = TITLE if encoding != "iso-8859-1" else TITLE.replace("—", "-")  # latin-1 has no dash
    essay = await first_essay(store, feed_server, encoded_feed(encoding, declared, title=title), content_type)
    assert (essay.title, essay.summary) == (title, SUBTITLE)


async def test_undecodable_bytes_show_as_one_replacement_character_each(
    store: Store, feed_server: FeedServer
) -> None:
    # A UTF-8 feed with one stray byte: that byte becomes U+FFFD, and nothing else changes
    # (feedparser alone reads the whole feed as windows-1252 then: "CafÃ© â€” naÃ¯ve").
    body = encoded_feed("utf-8", "UTF-8", title=TITLE + " STRAY").replace(b"STRAY", b"\xff")
    essay = await first_essay(store, feed_server, body, "application/rss+xml; charset=utf-8")
    assert essay.title == TITLE + " \ufffd"
    assert essay.summary == SUBTITLE


def test_decoding_counts_only_its_own_replacements_and_passes_over_unknown_charsets() -> None:
    # One stray byte, and one U+FFFD the feed wrote itself.
    decoded = feed_encoding.decode(b"<x>Caf\xc3\xa9 \xff \xef\xbf\xbd</x>", "text/xml")
    assert (decoded.encoding, decoded.replaced) == ("utf-8", 1)
    assert decoded.body.decode() == "<x>Café \ufffd \ufffd</x>"
    latin = b'<?xml version="1.0" encoding="iso-8859-1"?><x>Caf\xe9</x>'
    decoded = feed_encoding.decode(latin, "application/xml; charset=no-such-charset")
    assert decoded.encoding == "iso-8859-1"
    assert decoded.body.decode() == '<?xml version="1.0" encoding="utf-8"?><x>Café</x>'
