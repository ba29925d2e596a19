"""The terminal adapter: the same core as the bots, streaming to stdout, one message a line."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from core import (
    Ember,
    Message,
    Outcome,
    Place,
    Platform,
    PlatformTraits,
    Runtime,
    Said,
    Trigger,
    User,
    utcnow,
)

PLATFORM: Platform = "console"
PLACE = Place(platform=PLATFORM, workspace_id="local", channel_id="terminal")


TRAITS = PlatformTraits(
    platform=PLATFORM,
    space_word="terminal",
    operator_seat=True,
    user_mention="@{id}",
    role_mention="@{id}",
    allow_dms=True,
    max_message_chars=1_000_000,
    edit_interval=0.0,
)
# The terminal is the operator's own seat: every line is for the model.
EVERY_LINE = Trigger(in_room_channel=True)


class ConsoleSink:
    """Edits in a terminal only ever extend the text, so each edit prints what is new."""

    max_chars = TRAITS.max_message_chars
    edit_interval = TRAITS.edit_interval

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown: dict[str, str] = {}

    async def post(self, text: str) -> str:
        handle = f"reply-{len(self._shown) + 1}"
        self._shown[handle] = ""
        await self.edit(handle, text)
        return handle

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        before = self._shown[handle]
        self._out.write(text[len(before) :] if text.startswith(before) else "\n" + text)
        self._out.flush()
        self._shown[handle] = text

    async def notice(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def finish(self, outcome: Outcome, leftover: Sequence[str] = ()) -> None:
        """A terminal has no buttons: the text is the whole reply."""

    async def abandon(self) -> None:
        """Nothing to take back: what was printed stays."""

    def stop_typing(self) -> None:
        """No typing sign in a terminal."""


@dataclass(frozen=True)
class ConsoleLine:
    """`core.ports.ArrivedMessage`: one line typed at the terminal."""

    message: Message
    out: TextIO
    trigger: Trigger = EVERY_LINE
    has_words: bool = True
    in_thread: bool = False

    @property
    def place(self) -> Place:
        return self.message.place

    @property
    def speaker_id(self) -> str:
        return self.message.author.id

    def first_delivery(self) -> bool:
        return True

    async def read(self) -> Said:
        return Said(self.message, None)  # the store keeps the session's conversation

    def open_reply(self, reply_id: str) -> ConsoleSink:
        return ConsoleSink(self.out)

    async def say(self, text: str) -> None:
        self.out.write(text + "\n")


async def chat(runtime: Runtime, *, name: str | None, alias: str | None, stdin: TextIO, out: TextIO) -> int:
    """Read one message per line until end of input; answer each through the core."""
    ember = Ember(runtime)
    ember.attach(TRAITS)
    speaker = name or getpass.getuser()
    user = User(id=f"console:{speaker}", name=speaker, platform="console", workspace_id="local")
    interactive = stdin.isatty()
    loop = asyncio.get_running_loop()
    count = 0
    while True:
        if interactive:
            out.write(f"{speaker}> ")
            out.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            return 0
        text = line.strip()
        if not text:
            continue
        count += 1
        message = Message(id=f"{utcnow().timestamp():.6f}-{count}", place=PLACE, author=user, text=text)
        if interactive:
            out.write("opus> ")
        await ember.message_arrived(ConsoleLine(message, out), alias=alias)
        out.write("\n")
        out.flush()
