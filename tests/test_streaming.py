"""The streaming helper: per-message throttled edits and clean splits."""

from __future__ import annotations

import asyncio
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.chat.streaming import ReplyFailed, StreamingReply, open_fence, split_all, split_once


class RecordingSink:
    """An adapter's sink as the core sees it: it records what a platform would show."""

    def __init__(self, max_chars: int = 100, edit_interval: float = 0.05) -> None:
        self.max_chars = max_chars
        self.edit_interval = edit_interval
        self.messages: dict[str, str] = {}
        self.writes: list[tuple[float, str, str]] = []  # (time, op, handle)
        self.notices: list[str] = []
        self.first_post = asyncio.Event()

    async def post(self, text: str) -> str:
        self.first_post.set()
        handle = f"m{len(self.messages) + 1}"
        self.messages[handle] = text
        self.writes.append((asyncio.get_running_loop().time(), "post", handle))
        return handle

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        self.messages[handle] = text
        self.writes.append((asyncio.get_running_loop().time(), "edit", handle))

    async def notice(self, text: str) -> None:
        self.notices.append(text)


def test_split_prefers_paragraphs_then_lines_then_words() -> None:
    text = "a" * 60 + "\n\n" + "b" * 60
    assert split_once(text, 100) == ("a" * 60, "b" * 60)
    text = "a" * 60 + "\n" + "b" * 60
    assert split_once(text, 100) == ("a" * 60, "b" * 60)
    text = "word " * 40
    head, rest = split_once(text, 100)
    assert len(head) <= 100 and head.endswith("word") and rest.startswith("word")


def test_split_closes_and_reopens_code_fences() -> None:
    text = "intro\n```python\n" + "\n".join(f"x = {i}" for i in range(40)) + "\n```\nafter"
    pieces = split_all(text, 120)
    assert len(pieces) > 2
    for piece in pieces:
        assert len(piece) <= 120
        assert open_fence(piece) is None, piece  # every piece renders on its own
    assert pieces[1].startswith("```python\n")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n`p"), max_size=600), st.integers(min_value=30, max_value=200))
def test_split_never_exceeds_limit_and_loses_no_words(text: str, limit: int) -> None:
    pieces = split_all(text, limit)
    assert all(len(p) <= limit for p in pieces)
    rejoined = " ".join(re.sub(r"```\w*", " ", p) for p in pieces)
    original = re.sub(r"```\w*", " ", text)
    assert "".join(rejoined.split()) == "".join(original.split())


async def test_edits_are_throttled_per_message() -> None:
    sink = RecordingSink(max_chars=10_000, edit_interval=0.05)
    reply = StreamingReply(sink)
    for i in range(40):
        reply.append(f"t{i} ")
        await asyncio.sleep(0.005)
    handles = await reply.finish()
    assert handles == ["m1"]
    assert sink.messages["m1"] == "".join(f"t{i} " for i in range(40))
    times = [t for t, _, h in sink.writes if h == "m1"]
    assert sink.writes[0][1] == "post"
    assert len(times) < 40  # coalesced
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= 0.05 - 1e-3 for gap in gaps), gaps


async def test_long_reply_continues_in_new_messages() -> None:
    sink = RecordingSink(max_chars=100, edit_interval=0.0)
    reply = StreamingReply(sink)
    words = [f"word{i}" for i in range(80)]
    for word in words:
        reply.append(word + " ")
        await asyncio.sleep(0)
    handles = await reply.finish()
    assert len(handles) >= 5
    assert all(len(sink.messages[h]) <= 100 for h in handles)
    assert " ".join(sink.messages[h] for h in handles).split() == words


async def test_concurrent_replies_do_not_share_a_throttle() -> None:
    # An hour between edits: were the throttle shared, the second reply could not be shown
    # before the safety timeout; each reply's own first post is never throttled.
    sink_a, sink_b = RecordingSink(edit_interval=3600), RecordingSink(edit_interval=3600)
    a, b = StreamingReply(sink_a), StreamingReply(sink_b)
    a.append("a")
    b.append("b")
    async with asyncio.timeout(10):
        await asyncio.gather(a.finish(), b.finish())
    assert sink_a.messages == {"m1": "a"} and sink_b.messages == {"m1": "b"}


async def test_platform_failure_surfaces_on_finish() -> None:
    class Broken(RecordingSink):
        async def post(self, text: str) -> str:
            raise PermissionError("Missing Permissions")

    reply = StreamingReply(Broken())
    reply.append("hello")
    with pytest.raises(ReplyFailed, match="PermissionError: Missing Permissions"):
        await reply.finish()
