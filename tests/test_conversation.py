"""History → Messages API payload: names, alternation, trimming, images, cache breakpoints."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta

from core.chat.payload import ANCHOR_EVERY, CACHE, Payload, anchored, build, estimate_tokens
from core.events import Attachment, Message, Place, User

PLACE = Place("discord", "g1", "c1")
ALICE = User("1", "Alice", "discord", "g1")
BOB = User("2", "Bob", "discord", "g1")
BOT = User("0", "ember", "discord", "g1")
START = datetime(2026, 11, 1, tzinfo=UTC)


def msg(n: int, author: User, text: str, **kw: object) -> Message:
    return Message(
        id=str(n),
        place=PLACE,
        author=author,
        text=text,
        created_at=START + timedelta(minutes=n),
        from_self=author is BOT,
        **kw,  # type: ignore[arg-type]
    )


def texts(payload_messages: list[dict]) -> list[tuple[str, list[str]]]:  # type: ignore[type-arg]
    return [(m["role"], [b.get("text", b["type"]) for b in m["content"]]) for m in payload_messages]


def test_speakers_named_and_roles_alternate() -> None:
    history = [
        msg(1, ALICE, "hi"),
        msg(2, BOB, "hello there"),
        msg(3, BOT, "Hello both."),
        msg(4, BOT, "More."),
        msg(5, ALICE, "what is a koan?"),
    ]
    payload = build(history, system_prompt="sys", budget=10_000)
    assert texts(payload.messages) == [
        ("user", ["Alice: hi", "Bob: hello there"]),
        ("assistant", ["Hello both.\n\nMore."]),
        ("user", ["Alice: what is a koan?"]),
    ]
    assert payload.system == [{"type": "text", "text": "sys"}]  # too short to cache


def test_leading_assistant_turns_are_dropped() -> None:
    payload = build([msg(1, BOT, "earlier"), msg(2, ALICE, "hi")], system_prompt="s", budget=1000)
    assert texts(payload.messages) == [("user", ["Alice: hi"])]
    assert payload.dropped == 1


def test_trims_oldest_first_and_always_keeps_newest() -> None:
    long = "x" * 4000  # about 1,000 tokens each
    history = [msg(i, ALICE if i % 2 else BOB, f"{i} {long}") for i in range(1, 11)]
    payload = build(history, system_prompt="s", budget=3_100)
    kept = [block["text"].split()[1] for m in payload.messages for block in m["content"]]
    assert kept == ["8", "9", "10"]
    assert payload.dropped == 7
    # The newest message stays even when it alone is over budget.
    huge = build([msg(1, ALICE, "y" * 100_000)], system_prompt="s", budget=100)
    assert huge.kept == 1 and huge.messages[0]["content"][0]["text"].endswith("y")


def marks(payload: Payload) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, m in enumerate(payload.messages)
        for j, b in enumerate(m["content"])
        if "cache_control" in b
    ]


def test_cache_breakpoint_marks_the_stable_prefix() -> None:
    words = "w" * 4200  # about 1,050 tokens
    history = [msg(1, ALICE, words), msg(2, BOT, "b"), msg(3, BOB, "c")]
    payload = build(history, system_prompt="s", budget=10_000)
    assert marks(payload) == [(1, 0)]  # the end of everything before the newest turn
    short = build([msg(1, ALICE, "a"), msg(2, BOT, "b"), msg(3, BOB, "c")], system_prompt="s", budget=1000)
    assert marks(short) == [] and "cache_control" not in short.system[0]  # under 1,024 tokens


def test_long_system_prompt_and_a_busy_conversation_use_at_most_four_breakpoints() -> None:
    system = "You are a patient reader. " * 200  # about 1,300 tokens: cached on its own
    history = [msg(i, ALICE if i % 3 else BOB, f"{i} " + "x" * 200) for i in range(1, 40)]
    payload = build(history, system_prompt=system, budget=100_000)
    assert payload.system[0]["cache_control"] == CACHE
    (only_user,) = payload.messages  # 39 user messages merge into one turn of 39 blocks
    marked = [j for j, b in enumerate(only_user["content"]) if "cache_control" in b]
    assert marked == []  # nothing before the newest turn: the turn itself is new
    history.insert(-1, msg(100, BOT, "an answer"))
    payload = build(history, system_prompt=system, budget=100_000)
    # The newest block before the last user turn, and the last 16-block boundary before it.
    assert marks(payload) == [(0, 31), (1, 0)]
    assert sum("cache_control" in b for m in payload.messages for b in m["content"]) + 1 <= 4


def test_no_breakpoints_where_the_backend_does_not_cache() -> None:
    words = "w" * 8000
    history = [msg(1, ALICE, words), msg(2, BOT, "b"), msg(3, BOB, "c")]
    payload = build(history, system_prompt=words, budget=10_000, cache=False)
    assert marks(payload) == [] and "cache_control" not in payload.system[0]


def test_a_cut_conversation_keeps_its_start_for_many_turns() -> None:
    """Trimming drops a block of the oldest messages, then keeps that start while new ones
    arrive, so the cached prefix survives; the window never drops below what fits."""
    long = "z" * 400  # about 100 tokens each
    history = [msg(i, ALICE if i % 2 else BOT, f"{i} {long}") for i in range(1, 200)]
    starts = []
    for end in range(60, 200, 2):
        window = history[end - 50 : end]  # what a 50-message history limit reads
        payload = build(anchored(window), system_prompt="s", budget=100_000)
        starts.append(payload.messages[0]["content"][0]["text"].split()[1])
        assert payload.kept >= ANCHOR_EVERY
    changes = sum(a != b for a, b in itertools.pairwise(starts))
    assert changes <= len(starts) // 3  # a new start every few turns at most, not every turn
    # Within the token budget alike: the start holds while the budget cuts the window.
    budget_starts = {
        build(history[: end + 1], system_prompt="s", budget=4_000)
        .messages[0]["content"][0]["text"]
        .split()[1]
        for end in range(100, 110)
    }
    assert len(budget_starts) <= 3


def test_images_become_blocks_and_bad_ones_a_note() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    good = Attachment("cat.png", "image/png", len(png), data=png, width=100, height=100)
    pdf = Attachment("paper.pdf", "application/pdf", 1000)
    huge = Attachment("big.jpg", "image/jpeg", 6 * 1024 * 1024, data=b"")
    svg = Attachment("logo.svg", "image/svg+xml", 10, data=b"<svg/>")
    payload = build(
        [msg(1, ALICE, "look", attachments=(good, pdf, huge, svg))], system_prompt="s", budget=10_000
    )
    blocks = payload.messages[0]["content"]
    assert blocks[0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()},
    }
    note = blocks[1]["text"]
    assert note.startswith("Alice: look")
    assert "'paper.pdf' skipped: not an image" in note
    assert "'big.jpg' skipped: larger than 5 MB" in note
    assert "'logo.svg' skipped: not a png, jpeg, gif or webp image" in note


def test_prefill_is_the_last_assistant_turn_without_trailing_space() -> None:
    payload = build([msg(1, ALICE, "count")], system_prompt="s", budget=1000, prefill="one, two, ")
    assert payload.messages[-1] == {"role": "assistant", "content": [{"type": "text", "text": "one, two,"}]}


def test_estimate_is_monotonic() -> None:
    assert estimate_tokens("") < estimate_tokens("a" * 40) < estimate_tokens("a" * 400)
