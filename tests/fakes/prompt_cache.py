"""The Messages API's prompt cache, as it bills, for the fake Anthropic (`fake.biller`).

A request is a sequence of blocks: the system blocks, then every message's content blocks.
A block with `cache_control` is a breakpoint. Billing, as the API documents it:

- a read: the longest prefix ending at a breakpoint, or at one of the `lookback` (about 20)
  block boundaries before it, that was written (or read) less than `ttl` seconds ago;
- a write: from there up to the last breakpoint, when that prefix is at least `minimum` tokens
  long (1,024 for Opus 3); each breakpoint's prefix of that length is then cached;
- input: everything after.

Tokens are counted deliberately unlike ember's estimate (3.5 characters a token and 3 per
block), so that calibrating against what the API reports is actually tested.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class Billed:
    input_tokens: int
    cache_write: int
    cache_read: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.cache_write + self.cache_read


def block_tokens(block: dict[str, Any]) -> int:
    if block.get("type") == "text":
        return math.ceil(len(str(block.get("text", ""))) / 3.5) + 3
    return 1600 if block.get("type") == "image" else 3


def blocks_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's blocks in the order the cache sees them (system, then messages)."""
    system = body.get("system") or []
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    )
    for message in body.get("messages", []):
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks.extend({**b, "role": message["role"]} for b in content)
    return blocks


@dataclass
class PromptCache:
    """One API key's cache. `clock` says the time in seconds (a test or bench moves it)."""

    clock: Callable[[], float]
    ttl: float = 300.0
    lookback: int = 20
    minimum: int = 1024
    written: dict[str, float] = field(default_factory=dict)  # prefix hash -> last written or read

    def __call__(self, body: dict[str, Any]) -> Billed:
        blocks = blocks_of(body)
        breakpoints = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise ValueError(f"{len(breakpoints)} cache_control blocks; the API allows {MAX_BREAKPOINTS}")
        ends, keys = _prefixes(str(body.get("model", "")), blocks)
        now = self.clock()
        hit = self._longest_hit(breakpoints, keys, now)
        read = ends[hit] if hit >= 0 else 0
        write = 0
        for point in breakpoints:
            if point > hit and ends[point] >= self.minimum:
                self.written[keys[point]] = now
                write = ends[point] - read
        total = ends[-1] if ends else 0
        return Billed(total - read - write, write, read)

    def _longest_hit(self, breakpoints: list[int], keys: list[str], now: float) -> int:
        hit = -1
        for point in breakpoints:
            for index in range(point, max(point - self.lookback, -1), -1):
                at = self.written.get(keys[index])
                if at is not None and now - at < self.ttl:
                    hit = max(hit, index)
                    break
        if hit >= 0:
            self.written[keys[hit]] = now  # a read refreshes the entry
        return hit


def _prefixes(model: str, blocks: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
    """Each prefix's token count and content hash (cache_control is not part of the content)."""
    digest = hashlib.sha256(model.encode())
    ends: list[int] = []
    keys: list[str] = []
    total = 0
    for block in blocks:
        content = {k: v for k, v in block.items() if k != "cache_control"}
        digest.update(json.dumps(content, sort_keys=True).encode())
        total += block_tokens(block)
        ends.append(total)
        keys.append(digest.copy().hexdigest())
    return ends, keys
