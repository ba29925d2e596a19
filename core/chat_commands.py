"""The chat commands: ask, prompt, model, forget, help. Same on every platform."""

from __future__ import annotations

from typing import Any

from core import transcript
from core.access.commands import ACCESS_COMMANDS
from core.commands import CommandContext, CommandResult, Commands, CommandSpec, Param
from core.errors import NotModerator, UsageError
from core.essays.commands import ESSAY_COMMANDS

# Past this, `/opus prompt` answers with a file rather than a wall of text.
INLINE_PROMPT_CHARS = 1800


async def ask(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    prompt = str(args["prompt"]).strip()
    if not prompt:
        raise UsageError("the prompt is empty", "ask <prompt>")
    return CommandResult("", ephemeral=False, ask=prompt)


async def prompt(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    payload = await ctx.runtime.engine.preview(ctx.place)
    if not payload.messages:
        return CommandResult("Nothing has been said here yet, so the model would see only its system prompt.")
    text = payload.as_text()
    summary = (
        f"The model would receive {len(payload.messages)} messages "
        f"(about {payload.estimated_tokens:,} tokens; {payload.dropped} older messages trimmed)."
    )
    if len(text) > INLINE_PROMPT_CHARS:
        return CommandResult(summary, attachment=("prompt.txt", text))
    return CommandResult(f"{summary}\n```\n{text}\n```")


async def model(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    engine = ctx.runtime.engine
    models = ctx.runtime.settings.models
    alias = args.get("alias")
    if alias is None:
        current = await engine.channel_model(ctx.place)
        choices = ", ".join(f"`{a}`" for a in sorted(models))
        name = models[current].display_name or current
        return CommandResult(f"This channel talks to **{name}** (`{current}`). Available: {choices}.")
    if not ctx.invoker.is_moderator:
        raise NotModerator()
    if alias not in models:
        raise UsageError(
            f"there is no model alias {alias!r}; choose one of {', '.join(sorted(models))}", "model [alias]"
        )
    await engine.set_channel_model(ctx.place, alias, ctx.invoker)
    name = models[alias].display_name or alias
    return CommandResult(f"This channel now talks to **{name}** (`{alias}`).", ephemeral=False)


async def forget(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
    gone = await transcript.forget_user(ctx.runtime.store, ctx.invoker.platform, ctx.invoker.id)
    return CommandResult(
        f"Done: deleted {gone.messages} of your messages and {gone.replies} replies to you. "
        "Usage records keep their token counts but no longer name you."
    )


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
    specs = [*CHAT_COMMANDS, *ACCESS_COMMANDS, *ESSAY_COMMANDS]

    async def help_(ctx: CommandContext, args: dict[str, Any]) -> CommandResult:
        return CommandResult(commands.help_text())

    specs.append(CommandSpec(("help",), "list the commands", help_))
    commands = Commands(specs, root)
    return commands
