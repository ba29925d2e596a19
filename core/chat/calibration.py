"""The context budget, calibrated against what the API counts.

ember estimates a prompt's tokens cheaply (about four characters a token); the API reports what
it actually counted in `message_start`. Each conversation keeps the last ratio of the two, and
its next prompt is trimmed to `context_tokens` ÷ that ratio in estimated tokens, so what the API
counts stays within a few percent of `context_tokens`. A conversation not seen yet borrows the
latest ratio of any conversation.
"""

from __future__ import annotations

from collections import OrderedDict

# The ratio is clamped: a wild report (an image-heavy prompt, a tokenizer surprise) should
# nudge the budget, not collapse or balloon it.
LOWEST, HIGHEST = 0.5, 3.0
# Conversations remembered; the least recently used are forgotten first.
REMEMBERED = 10_000


class Calibration:
    """`Calibration()`: one per engine, shared by every request it makes."""

    def __init__(self, remembered: int = REMEMBERED) -> None:
        self._remembered = remembered
        self._ratios: OrderedDict[str, float] = OrderedDict()
        self._latest = 1.0

    def budget(self, conversation: str, context_tokens: int) -> int:
        """The estimated-token budget that the API will count as about `context_tokens`."""
        return max(1, int(context_tokens / self.ratio(conversation)))

    def ratio(self, conversation: str) -> float:
        return self._ratios.get(conversation, self._latest)

    def observe(self, conversation: str, estimated: int, counted: int) -> None:
        """The API counted `counted` input tokens for a prompt ember estimated at `estimated`."""
        if estimated <= 0 or counted <= 0:
            return
        ratio = min(HIGHEST, max(LOWEST, counted / estimated))
        self._ratios[conversation] = self._latest = ratio
        self._ratios.move_to_end(conversation)
        while len(self._ratios) > self._remembered:
            self._ratios.popitem(last=False)
