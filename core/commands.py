"""One command grammar for every platform: `/opus <group> <action> [args]`.

The specs below are the single source of truth: Slack parses its command text with `parse`,
Discord builds its slash-command tree from the same specs, and both run the same handlers.
Handlers return a CommandResult; adapters only render it.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.errors import CommandError, NotModerator, UsageError, new_trace_id
from core.events import Place, User
from core.ports import Directory

if TYPE_CHECKING:
    from core.runtime import Runtime

log = logging.getLogger(__name__)

ParamKind = Literal["text", "user", "channel", "role", "int", "alias"]

# Mentions as each platform writes them in text: Discord <@123> <@!123> <#123> <@&123>;
# Slack <@U123|name> <#C123|name> <!subteam^S123|@name>.
_USER = re.compile(r"^<@!?([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_ROLE = re.compile(r"^<(?:@&|!subteam\^)([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_BARE_ID = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Param:
    name: str
    kind: ParamKind
    description: str
    required: bool = False
    # A trailing text parameter takes every remaining word (reasons, notes, prompts).
    rest: bool = False


@dataclass(frozen=True)
class CommandContext:
    invoker: User
    place: Place
    # The running services. Named for the type checker only: core.runtime imports the command
    # handlers' modules, so importing it here at run time would be a circle.
    runtime: Runtime
    directory: Directory | None = None


@dataclass(frozen=True)
class CommandResult:
    text: str
    ephemeral: bool = True
    # (filename, content): long output the adapter sends as a file.
    attachment: tuple[str, str] | None = None
    # When set, the adapter starts a conversation with this prompt (e.g. a new thread).
    ask: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[CommandContext, dict[str, Any]], Awaitable[CommandResult]]


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    moderator_only: bool = False

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def usage(self, root: str) -> str:
        parts = [root, *self.path]
        for p in self.params:
            label = f"{p.name}..." if p.rest else p.name
            parts.append(f"<{label}>" if p.required else f"[{label}]")
        return " ".join(parts)


def _convert(param: Param, raw: str, usage: str) -> Any:
    patterns = {"user": _USER, "channel": _CHANNEL, "role": _ROLE}
    if param.kind in patterns:
        match = patterns[param.kind].match(raw)
        if match:
            return match.group(1)
        if _BARE_ID.match(raw):
            return raw
        raise UsageError(f"{param.name} should be a {param.kind} mention, not {raw!r}", usage)
    if param.kind == "int":
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise UsageError(f"{param.name} should be a whole number, not {raw!r}", usage)
        return int(raw)
    return raw


class Commands:
    """The command table for one bot: parse text, check who may run what, run it."""

    def __init__(self, specs: Sequence[CommandSpec], root: str = "/opus") -> None:
        self.specs = tuple(specs)
        self.root = root
        self._by_path = {s.path: s for s in self.specs}

    def find(self, path: Sequence[str]) -> CommandSpec | None:
        return self._by_path.get(tuple(path))

    def help_text(self) -> str:
        lines = [
            f"`{s.usage(self.root)}` — {s.summary}" + (" (moderators)" if s.moderator_only else "")
            for s in self.specs
        ]
        return "\n".join(lines)

    def parse(self, text: str) -> tuple[CommandSpec, dict[str, Any]]:
        """Parse command text such as `access grant <@U1> 7 welcome back`."""
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        spec, used = self._match(words)
        return spec, self._bind(spec, words[used:])

    def _match(self, words: list[str]) -> tuple[CommandSpec, int]:
        for length in (2, 1):
            spec = self._by_path.get(tuple(w.lower() for w in words[:length]))
            if spec is not None and len(words) >= length:
                return spec, length
        asked = " ".join(words[:2]) or "(nothing)"
        raise UsageError(f"unknown command {asked!r}. Commands:\n{self.help_text()}", "")

    def _bind(self, spec: CommandSpec, words: list[str]) -> dict[str, Any]:
        usage = spec.usage(self.root)
        args: dict[str, Any] = {}
        for index, param in enumerate(spec.params):
            if param.rest:
                if words[index:]:
                    args[param.name] = " ".join(words[index:])
                words = words[:index]
                break
            if index < len(words):
                args[param.name] = _convert(param, words[index], usage)
        else:
            if len(words) > len(spec.params):
                raise UsageError(f"too many arguments: {' '.join(words[len(spec.params) :])!r}", usage)
        missing = [p.name for p in spec.params if p.required and p.name not in args]
        if missing:
            raise UsageError(f"missing {', '.join(missing)}", usage)
        return args

    async def run(self, spec: CommandSpec, args: dict[str, Any], ctx: CommandContext) -> CommandResult:
        """Run a command; moderator-only commands are checked here, for every platform."""
        if spec.moderator_only and not ctx.invoker.is_moderator:
            raise NotModerator()
        return await spec.handler(ctx, args)

    async def execute(self, text: str, ctx: CommandContext) -> CommandResult:
        """Parse and run; every CommandError becomes a private answer to the caller."""
        try:
            spec, args = self.parse(text)
        except CommandError as error:
            return CommandResult(error.user_message, ephemeral=True)
        return await self.answer(spec, args, ctx)

    async def answer(self, spec: CommandSpec, args: dict[str, Any], ctx: CommandContext) -> CommandResult:
        """Run a parsed command for a platform: a CommandError becomes a private answer to the
        caller, anything else a private apology with a trace id that the log carries too."""
        try:
            return await self.run(spec, args, ctx)
        except CommandError as error:
            return CommandResult(error.user_message, ephemeral=True)
        except Exception:
            trace = new_trace_id()
            log.exception("command %s failed [trace %s]", spec.name, trace)
            return CommandResult(
                f"Sorry, that command failed on ember's side (trace {trace}).", ephemeral=True
            )
