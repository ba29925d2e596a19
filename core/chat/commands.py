"""The chat commands: ask, prompt, model, forget, help. Same on every platform."""

from __future__ import annotations

from typing import Any

from core.access.commands import ACCESS_COMMANDS
from core.chat import transcript, wording
from core.chat.engine import ChatEngine
from core.commands import CommandContext, CommandResult, Commands, CommandSpec, Param
from core.errors import NotModerator, UsageError
from core.essays.commands import ESSAY_COMMANDS
from core.events import Place
from core.studio.commands import STUDIO_COMMANDS

# Past this, `/opus prompt` answers with a file rather than a wall of text.
INLINE_PROMPT_CHARS = 1800


async def ask(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    prompt = str(args["prompt"]).strip()
    if not prompt:
        raise UsageError("the prompt is empty", "ask <prompt>")
    return CommandResult("", ephemeral=False, ask=prompt)


async def prompt(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    return await prompt_answer(ctx.runtime.engine, ctx.place)


async def prompt_answer(engine: ChatEngine, place: Place) -> CommandResult:
    """What the model would receive for the next message in `place`, as a private answer: the
    one flow behind `/opus prompt` and the "Show the prompt" message shortcut / menu command."""
    payload = await engine.preview(place)
    if not payload.messages:
        return CommandResult(wording.NOTHING_SAID_YET)
    text = payload.as_text()
    summary = wording.prompt_summary(len(payload.messages), payload.estimated_tokens, payload.dropped)
    if len(text) > INLINE_PROMPT_CHARS:
        return CommandResult(summary, attachment=("prompt.txt", text))
    return CommandResult(f"{summary}\n```\n{text}\n```")


async def model(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    engine = ctx.runtime.engine
    models = ctx.runtime.settings.models
    alias = args.get("alias")
    if alias is None:
        current = await engine.channel_model(ctx.place)
        name = models[current].display_name or current
        return CommandResult(wording.channel_talks_to(name, current, sorted(models)))
    if not ctx.invoker.is_moderator:
        raise NotModerator()
    if alias not in models:
        raise UsageError(wording.no_such_alias(alias, sorted(models)), "model [alias]")
    await engine.set_channel_model(ctx.place, alias, ctx.invoker)
    name = models[alias].display_name or alias
    return CommandResult(wording.channel_now_talks_to(name, alias), ephemeral=False)


async def forget(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    gone = await transcript.forget_user(ctx.runtime.store, ctx.invoker.platform, ctx.invoker.id)
    return CommandResult(wording.forgotten(gone.messages, gone.replies))


CHAT_COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        ("ask",),
        "ask the model something in a new thread",
        ask,
        (Param("prompt", "text", "what to ask", required=True, rest=True),),
    ),
    CommandSpec(("prompt",), "show exactly what the model would receive here", prompt),
    CommandSpec(
        ("model",),
        "see this channel's model, or (moderators) set it",
        model,
        (Param("alias", "alias", "model alias to use in this channel"),),
    ),
    CommandSpec(("forget",), "delete what ember stores about you", forget),
)


def build_commands(root: str) -> Commands:
    """Every command ember offers, for one bot whose top-level command is `root`."""
    specs = [*CHAT_COMMANDS, *ACCESS_COMMANDS, *ESSAY_COMMANDS, *STUDIO_COMMANDS]

    async def help_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
        return CommandResult(commands.help_text())

    specs.append(CommandSpec(("help",), "list the commands", help_))
    commands = Commands(specs, root)
    return commands
