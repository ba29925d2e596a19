"""History → Messages API payload.

Many people talk in one place, but the Messages API knows only `user` and `assistant`, strictly
alternating and starting with `user`. So each person's words are prefixed with their name,
consecutive turns of one role are merged, the oldest turns are trimmed to the alias's token
budget (the newest message always stays), and cache breakpoints mark the stable prefix so a long
conversation is billed mostly at the cache-read rate.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.events import Attachment, Message

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the API's limit for one base64 image
MAX_IMAGE_SIDE = 8000
MAX_IMAGES = 20
# Images are resized by the API to about 1.15 megapixels: (w*h)/750 tokens, 1,600 at most.
IMAGE_TOKENS_CAP = 1600
CACHE = {"type": "ephemeral"}
# The API caches nothing shorter than this (Opus 3: 1,024 tokens): a breakpoint there is wasted.
MIN_CACHED_TOKENS = 1024
# Trimmed history starts at an anchor: about one message in this many (see `anchored`).
ANCHOR_EVERY = 16
# A second conversation breakpoint sits on block boundaries this far apart (the API looks back
# 20 blocks from each breakpoint for a cached prefix, so a busy turn still finds one).
STEP_BLOCKS = 16

Block = dict[str, Any]


def estimate_tokens(text: str) -> int:
    """A cheap, deliberately generous estimate: about four characters a token."""
    return len(text) // 4 + 4


def image_tokens(attachment: Attachment) -> int:
    if attachment.width and attachment.height:
        return min(IMAGE_TOKENS_CAP, attachment.width * attachment.height // 750 + 1)
    return IMAGE_TOKENS_CAP


def image_problem(attachment: Attachment) -> str:
    """Why this attachment cannot go to the model as an image, or "" when it can."""
    if attachment.media_type not in IMAGE_TYPES:
        return "not a png, jpeg, gif or webp image"
    if attachment.size > MAX_IMAGE_BYTES or (
        attachment.data is not None and len(attachment.data) > MAX_IMAGE_BYTES
    ):
        return "larger than 5 MB"
    if max(attachment.width or 0, attachment.height or 0) > MAX_IMAGE_SIDE:
        return "wider or taller than 8000 pixels"
    if attachment.data is None:
        return "not downloaded"
    return ""


def speaker_label(message: Message) -> str:
    name = " ".join(message.author.name.split()) or message.author.id
    return name[:80]


@dataclass
class _Turn:
    role: str
    blocks: list[Block]
    tokens: int


def _render(message: Message, images_left: int) -> tuple[_Turn, int]:
    if message.from_self:
        return _Turn("assistant", [{"type": "text", "text": message.text}], estimate_tokens(message.text)), 0
    blocks: list[Block] = []
    tokens = 0
    notes: list[str] = []
    used = 0
    for attachment in message.attachments:
        problem = image_problem(attachment) if attachment.is_image else "not an image"
        if not problem and used >= images_left:
            problem = "too many images in this conversation"
        if problem:
            notes.append(f"[attachment {attachment.filename!r} skipped: {problem}]")
            continue
        assert attachment.data is not None
        data = base64.b64encode(attachment.data).decode("ascii")
        source = {"type": "base64", "media_type": attachment.media_type, "data": data}
        blocks.append({"type": "image", "source": source})
        tokens += image_tokens(attachment)
        used += 1
    text = f"{speaker_label(message)}: {message.text}".rstrip()
    if notes:
        text += "\n" + "\n".join(notes)
    blocks.append({"type": "text", "text": text})
    return _Turn("user", blocks, tokens + estimate_tokens(text)), used


def _merge(turns: list[_Turn]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if messages and messages[-1]["role"] == turn.role:
            messages[-1]["content"].extend(turn.blocks)
        else:
            messages.append({"role": turn.role, "content": list(turn.blocks)})
    for message in messages:
        if message["role"] == "assistant":
            # One block per assistant turn reads as one voice; join what was split across messages.
            text = "\n\n".join(b["text"] for b in message["content"] if b["type"] == "text")
            message["content"] = [{"type": "text", "text": text}]
    return messages


@dataclass(frozen=True)
class Payload:
    """What the Messages API receives, plus how much history made it in."""

    system: list[Block]
    messages: list[dict[str, Any]]
    estimated_tokens: int
    kept: int
    dropped: int

    def as_text(self) -> str:
        """A readable rendering of exactly this payload (for `/opus prompt`)."""
        lines = ["[system]", *(b["text"] for b in self.system)]
        for message in self.messages:
            lines.append(f"\n[{message['role']}]")
            for block in message["content"]:
                lines.append(block["text"] if block["type"] == "text" else f"<{block['type']}>")
        return "\n".join(lines)


def anchored(history: Sequence[Message]) -> Sequence[Message]:
    """`history` from its first anchor on, for a conversation that was cut short.

    Dropping the oldest message on every turn would change the start of the prompt, and with it
    every cached prefix, on every turn. Instead a cut conversation starts at an anchor — a
    message whose id hashes to 0 modulo ANCHOR_EVERY — which stays the start while the window
    slides, until it falls out and the next anchor (about ANCHOR_EVERY messages on) takes over:
    the oldest messages are dropped a block at a time and the prefix is read from the cache in
    between. The newest message always stays; a window of ANCHOR_EVERY or fewer is left whole."""
    if len(history) <= ANCHOR_EVERY:
        return history
    for index, message in enumerate(history[:-1]):
        if zlib.crc32(message.id.encode()) % ANCHOR_EVERY == 0:
            return history[index:]
    return history


def build(
    history: Sequence[Message],
    *,
    system_prompt: str,
    budget: int,
    prefill: str = "",
    cache: bool = True,
) -> Payload:
    """Render `history` (oldest first; the last item is the message being answered). `cache`
    False leaves every breakpoint off (a backend that does not cache this model)."""
    if not history:
        raise ValueError("build() needs at least the message being answered")
    system_tokens = estimate_tokens(system_prompt)
    turns, spent = _fit(history, budget, system_tokens + estimate_tokens(prefill))
    dropped = len(history) - len(turns)
    while turns and turns[0].role == "assistant":
        spent -= turns.pop(0).tokens  # the API needs a user turn first
        dropped += 1
    messages = _merge(turns)
    system: list[Block] = [{"type": "text", "text": system_prompt}] if system_prompt else []
    if cache:
        _mark_cache_breakpoints(system, system_tokens, messages)
    if prefill.rstrip():
        messages.append({"role": "assistant", "content": [{"type": "text", "text": prefill.rstrip()}]})
    return Payload(system, messages, spent, len(turns), dropped)


def _fit(history: Sequence[Message], budget: int, spent: int) -> tuple[list[_Turn], int]:
    """The newest turns that fit `budget` (the newest always does), oldest first; when some did
    not, the rest starts at an anchor so the start stays put for many turns."""
    rendered: list[tuple[Message, _Turn]] = []
    images_left = MAX_IMAGES
    for index, message in enumerate(reversed(history)):
        turn, used = _render(message, images_left)
        if index > 0 and spent + turn.tokens > budget:
            break
        rendered.append((message, turn))
        spent += turn.tokens
        images_left -= used
    rendered.reverse()
    if len(rendered) < len(history):
        start = len(rendered) - len(anchored([m for m, _ in rendered]))
        spent -= sum(t.tokens for _, t in rendered[:start])
        rendered = rendered[start:]
    return [t for _, t in rendered], spent


def _mark_cache_breakpoints(system: list[Block], system_tokens: int, messages: list[dict[str, Any]]) -> None:
    """At most three of the API's four breakpoints, each on a prefix long enough to be cached:
    the system prompt (with any essay in it); the end of everything before the newest user turn,
    which the next turn reads; and the last STEP_BLOCKS boundary before that, which stays put
    for several turns."""
    if system and system_tokens >= MIN_CACHED_TOKENS:
        system[-1]["cache_control"] = CACHE
    if len(messages) < 2:
        return
    blocks = [b for m in messages[:-1] for b in m["content"]]
    ends = _block_ends(system_tokens, messages[:-1])
    latest = len(blocks) - 1
    stepped = (latest // STEP_BLOCKS) * STEP_BLOCKS - 1
    for index in sorted({stepped, latest}):
        if index >= 0 and ends[index] >= MIN_CACHED_TOKENS:
            blocks[index]["cache_control"] = CACHE


def _block_ends(system_tokens: int, messages: list[dict[str, Any]]) -> list[int]:
    """The estimated tokens of the prompt up to and including each block of `messages`."""
    total = system_tokens
    ends: list[int] = []
    for message in messages:
        for block in message["content"]:
            total += estimate_tokens(block["text"]) if block["type"] == "text" else IMAGE_TOKENS_CAP
            ends.append(total)
    return ends
