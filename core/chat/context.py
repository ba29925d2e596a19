"""What the model is shown besides its prompt: the conversation so far and extra system text.

The conversation comes from the platform when the adapter read it (or registered a reader that
can), else from ember's own transcript. Extra system text comes from context sources, e.g. the
essay a discussion thread is about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from core.chat import payload
from core.config import Settings
from core.events import Message, Place
from core.ports import HistoryReader
from core.store.chat_repo import ChatRepo, StoredReply
from core.store.transcript_repo import TranscriptRepo

# Extra system-prompt text for a place (e.g. the essay a discussion thread is about).
ContextSource = Callable[[Place], Awaitable[str]]


class ContextReader:
    """Gathers context for the engine; owns the registered sources and platform readers."""

    def __init__(self, settings: Settings, records: ChatRepo, transcript: TranscriptRepo) -> None:
        self._settings = settings
        self._chat = records
        self._transcript = transcript
        self._sources: list[ContextSource] = []
        self._readers: dict[str, HistoryReader] = {}

    def add_source(self, source: ContextSource) -> None:
        self._sources.append(source)

    def set_reader(self, platform: str, reader: HistoryReader) -> None:
        self._readers[platform] = reader

    @property
    def _history_limit(self) -> int:
        return self._settings.chat.history_messages

    async def extra_system(self, place: Place) -> str:
        """What the context sources add to the system prompt in `place`."""
        parts = [await source(place) for source in self._sources]
        return "".join(f"\n\n{part}" for part in parts if part)

    async def channel_alias(self, place: Place) -> str:
        """The alias answering in the channel of `place`: a moderator's choice while it is still
        configured, else the default."""
        return self._configured(await self._chat.channel_alias(place))

    async def for_message(
        self, message: Message, history: Sequence[Message] | None, alias: str | None
    ) -> tuple[list[Message], str]:
        """The conversation ending in `message`, and the alias to answer with. Without platform
        `history`, the channel's alias and the stored turns are read together, in one hop."""
        place = message.place
        if history is not None:
            channel = None if alias else await self._chat.channel_alias(place)
            return self._cut([*history, message], read=len(history)), alias or self._configured(channel)
        channel, stored = await self._chat.channel_alias_and_history(place, history_limit=self._history_limit)
        history = [m for m in stored if m.id != message.id]
        return self._cut([*history, message], read=len(stored)), alias or self._configured(channel)

    async def latest(self, place: Place) -> list[Message]:
        """The conversation in `place` as it stands (for the prompt preview)."""
        reader = self._readers.get(place.platform)
        if reader is not None:
            return list(await reader(place, "", self._history_limit))
        return await self._transcript.history(place, limit=self._history_limit)

    async def preview(self, place: Place, alias: str | None) -> payload.Payload:
        """Exactly what the model would receive for the next message here (for `/opus prompt`)."""
        model = self._settings.models[alias or await self.channel_alias(place)]
        history = await self.latest(place)
        if not history:
            return payload.Payload([], [], 0, 0, 0)
        system = model.system_prompt + await self.extra_system(place)
        return payload.build(history, system_prompt=system, budget=model.context_tokens)

    async def prompt_of(self, reply: StoredReply) -> Message:
        """The stored message an earlier reply answered; LookupError when it is gone."""
        history = await self._transcript.history(reply.place, limit=1, before_id=reply.prompt_message_id)
        if not history or history[-1].id != reply.prompt_message_id:
            raise LookupError(f"the prompt of reply {reply.id} is no longer stored")
        return history[-1]

    async def upto(self, prompt: Message) -> list[Message]:
        """The history before `prompt` and the prompt itself, from the platform when it can say."""
        reader = self._readers.get(prompt.place.platform)
        if reader is not None:
            context = list(await reader(prompt.place, prompt.id, self._history_limit + 1))
            if context and context[-1].id == prompt.id:
                return context
        history = await self._transcript.history(
            prompt.place, limit=self._history_limit + 1, before_id=prompt.id
        )
        return [*(m for m in history if m.id != prompt.id), prompt]

    def _cut(self, conversation: list[Message], *, read: int) -> list[Message]:
        """A conversation read up to the history limit may have been cut short: then it starts
        at an anchor, so its start (and the cached prompt) stays put for many turns."""
        if read < self._history_limit:
            return conversation
        return list(payload.anchored(conversation))

    def _configured(self, alias: str | None) -> str:
        if alias is not None and alias in self._settings.models:
            return alias
        return self._settings.chat.default_model
