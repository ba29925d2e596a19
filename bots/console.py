"""The terminal adapter: the same core as the bots, streaming to stdout, one message a line."""

from __future__ import annotations

import asyncio
import getpass
from typing import TextIO

from core.events import Message, Place, User, utcnow
from core.runtime import Runtime

PLACE = Place(platform="console", workspace_id="local", channel_id="terminal")


class ConsoleSink:
    """Edits in a terminal only ever extend the text, so each edit prints what is new."""

    max_chars = 1_000_000
    edit_interval = 0.0

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown: dict[str, str] = {}

    async def post(self, text: str) -> str:
        handle = f"reply-{len(self._shown) + 1}"
        self._shown[handle] = ""
        await self.edit(handle, text)
        return handle

    async def edit(self, handle: str, text: str) -> None:
        before = self._shown[handle]
        self._out.write(text[len(before) :] if text.startswith(before) else "\n" + text)
        self._out.flush()
        self._shown[handle] = text

    async def notice(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


async def chat(runtime: Runtime, *, name: str | None, alias: str | None, stdin: TextIO, out: TextIO) -> int:
    """Read one message per line until end of input; answer each through the core."""
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
        await runtime.engine.respond(message, ConsoleSink(out), alias=alias)
        out.write("\n")
        out.flush()
