"""A discussion thread's context: in the thread under an announcement, the model reads the essay.

The chat engine asks every context source for text about a place; this one answers only in a
thread ember opened under an announcement, with the essay's own text (core.essays.wording says
how it is introduced).
"""

from __future__ import annotations

from core.essays import wording
from core.essays.delivery import announcement_of
from core.events import Place
from core.store.essays_repo import EssaysRepo

# A discussion's system text stays well inside the model's context window.
CONTEXT_CHARS = 60_000


class Discussions:
    def __init__(self, essays: EssaysRepo) -> None:
        self._essays = essays

    async def context(self, place: Place) -> str:
        """A ChatEngine context source: in an announcement's discussion thread, the essay itself."""
        if not place.thread_id:
            return ""
        essay = await self._essays.discussed_in(
            place.platform, place.workspace_id, place.channel_id, place.thread_id
        )
        return wording.discussion_prompt(announcement_of(essay), CONTEXT_CHARS) if essay else ""
