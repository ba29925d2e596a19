"""Slash commands built from the core's command specs, run by the core, rendered here.

`build_group` turns every `CommandSpec` into an app command under `/<command>` (two-word paths
become subcommand groups), so a command added to the core appears on Discord with no change
here. Each parameter kind maps to a Discord option type; values go back to the core as the
strings and numbers its text grammar would produce.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import discord
from discord import app_commands

from bots.discord.convert import place_of, user_of
from bots.discord.inbound import DiscordInbound
from bots.discord.render import NO_PINGS, rendered
from bots.discord.sink import DiscordSink
from core import (
    CommandResult,
    Commands,
    CommandSpec,
    Ember,
    Param,
    ParamKind,
    Place,
    Question,
    User,
    split_all,
    utcnow,
)
from core.budget import Priority

log = logging.getLogger(__name__)

Interaction = discord.Interaction[discord.Client]
Runner = Callable[[Interaction, CommandSpec, dict[str, Any]], Awaitable[None]]

# Discord allows three seconds to acknowledge; answer directly when the core is quicker than
# this, else defer ("ember is thinking…") and answer when it is done.
ACK_BUDGET = 2.0
MAX_MESSAGE = 2000
MAX_CHOICES = 25
THREAD_NAME = 100

OPTION_TYPES: Mapping[ParamKind, Any] = {
    "text": str,
    "alias": str,
    "user": discord.User,
    "channel": discord.TextChannel,
    "role": discord.Role,
    "int": app_commands.Range[int, 1, None],
}


# ---------------------------------------------------------------- specs → app commands


def core_value(value: Any) -> Any:
    """An option as the core's text grammar would give it: ids as strings, numbers as ints."""
    if isinstance(value, discord.abc.Snowflake) and not isinstance(value, int):
        return str(value.id)
    return value


def option(param: Param) -> inspect.Parameter:
    default = inspect.Parameter.empty if param.required else None
    return inspect.Parameter(
        param.name, inspect.Parameter.KEYWORD_ONLY, annotation=OPTION_TYPES[param.kind], default=default
    )


def alias_options(callback: Any, spec: CommandSpec, aliases: list[str]) -> Any:
    """Model aliases as choices (Discord validates them), or autocompleted when there are many."""
    names = [p.name for p in spec.params if p.kind == "alias"]
    for name in names:
        if len(aliases) <= MAX_CHOICES:
            choices = [app_commands.Choice(name=a, value=a) for a in aliases]
            callback = app_commands.choices(**{name: choices})(callback)
        else:
            callback = app_commands.autocomplete(**{name: complete_from(aliases)})(callback)
    return callback


Completer = Callable[[Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]


def complete_from(values: list[str]) -> Completer:
    async def complete(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        found = [v for v in values if current.lower() in v.lower()]
        return [app_commands.Choice(name=v, value=v) for v in found[:MAX_CHOICES]]

    return complete


def slash_command(spec: CommandSpec, run: Runner, aliases: list[str]) -> app_commands.Command[Any, ..., None]:
    async def callback(interaction: Interaction, **options: Any) -> None:
        await run(interaction, spec, options)

    # discord.py reads options from the callback's signature; give it one per core parameter.
    interaction = inspect.Parameter(
        "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Interaction
    )
    callback.__signature__ = inspect.Signature([interaction, *map(option, spec.params)])  # type: ignore[attr-defined]
    described = app_commands.describe(**{p.name: p.description[:100] for p in spec.params})(callback)
    described = alias_options(described, spec, aliases)
    if spec.moderator_only:
        # A hint only (Discord applies it to top-level commands); the core makes the decision.
        described = app_commands.default_permissions(manage_guild=True)(described)
    return app_commands.Command(name=spec.path[-1], description=spec.summary[:100], callback=described)


def build_group(commands: Commands, root: str, run: Runner, aliases: list[str]) -> app_commands.Group:
    top = app_commands.Group(name=root, description="talk with the model, and manage ember")
    groups: dict[str, app_commands.Group] = {}
    for spec in commands.specs:
        parent = top
        if len(spec.path) == 2:
            head = spec.path[0]
            parent = groups.get(head) or app_commands.Group(
                name=head, description=f"{head} commands", parent=top
            )
            groups[head] = parent
        parent.add_command(slash_command(spec, run, aliases))
    return top


# ---------------------------------------------------------------- running and rendering


def thread_title(prompt: str) -> str:
    words = " ".join(prompt.split())
    return words if len(words) <= THREAD_NAME else words[: THREAD_NAME - 1].rstrip() + "…"


def can_open_thread(channel: object) -> bool:
    return isinstance(channel, discord.TextChannel)


class GuildDirectory:
    """`core.commands.Directory`: who someone is in a server, read from Discord."""

    def __init__(self, client: discord.Client, moderator_roles: list[str]) -> None:
        self._client = client
        self._roles = moderator_roles

    async def lookup_user(self, workspace_id: str, user_id: str) -> User | None:
        guild = self._client.get_guild(int(workspace_id)) if workspace_id.isdigit() else None
        if guild is None or not user_id.isdigit():
            return None
        member = guild.get_member(int(user_id))
        if member is None:
            try:
                member = await guild.fetch_member(int(user_id))
            except discord.NotFound:
                return None
        return user_of(member, self._roles)


class SlashCommands:
    def __init__(
        self, client: discord.Client, ember: Ember, commands: Commands, inbound: DiscordInbound
    ) -> None:
        self._client = client
        self._ember = ember
        self._commands = commands
        self._inbound = inbound
        self._settings = ember.settings.discord
        self._directory = GuildDirectory(client, self._settings.moderator_roles)

    def group(self) -> app_commands.Group:
        aliases = sorted(self._ember.settings.models)
        return build_group(self._commands, self._settings.command, self.run, aliases)

    async def run(self, interaction: Interaction, spec: CommandSpec, options: dict[str, Any]) -> None:
        invoker = user_of(interaction.user, self._settings.moderator_roles, interaction.permissions)
        place = place_of(
            interaction.channel or self._client.get_partial_messageable(interaction.channel_id or 0)
        )
        args = {name: core_value(value) for name, value in options.items() if value is not None}
        running = self._ember.run_command(
            self._commands, spec, args, invoker=invoker, place=place, directory=self._directory
        )
        result = await within_ack_window(interaction, running)
        try:
            if result.ask:
                await self._ember.ask(DiscordAsk(self._inbound, interaction, place), invoker, result.ask)
            else:
                await render(interaction, result)
        except discord.HTTPException as error:
            log.error(
                "could not answer /%s %s in %s: %s", self._settings.command, spec.name, place.key, error
            )


class DiscordAsk:
    """`core.ports.AskThread`: the question as the command's public answer, and a thread
    named after it (in a text channel, when `[discord] threads` is on)."""

    def __init__(self, inbound: DiscordInbound, interaction: Interaction, place: Place) -> None:
        self._inbound = inbound
        self._interaction = interaction
        self._place = place

    async def post_question(self, asker: User, prompt: str) -> Question:
        interaction, inbound = self._interaction, self._inbound
        embed = discord.Embed(description=prompt[:4096]).set_author(name=f"{asker.name} asked")
        starter = await first_response(interaction, "", ephemeral=False, embed=embed)
        place = self._place
        reply_to: int | None = starter.id
        if inbound.settings.discord.threads and can_open_thread(interaction.channel):
            try:
                thread = await inbound.scheduler.send(
                    Priority.ANSWER, lambda: starter.create_thread(name=thread_title(prompt))
                )
                assert thread is not None, "only merged edits and typing come back empty"
                place, reply_to = place_of(thread), None
            except discord.HTTPException as error:
                log.warning("could not open a thread in %s (%s); answering in the channel", place.key, error)
        limit = inbound.settings.chat.history_messages
        context = [] if reply_to is None else await inbound.history.before(starter, place, limit)

        def open_reply(reply_id: str) -> DiscordSink:
            sink = inbound.sink(place, reply_id, reply_to=reply_to)
            sink.start_typing()
            return sink

        return Question(str(starter.id), place, utcnow(), context, open_reply)


async def within_ack_window(interaction: Interaction, work: Awaitable[CommandResult]) -> CommandResult:
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
    if not done:
        await interaction.response.defer(ephemeral=True, thinking=True)
    return await task


async def first_response(
    interaction: Interaction,
    text: str,
    *,
    ephemeral: bool,
    embed: discord.Embed | None = None,
    file: discord.File | None = None,
) -> discord.Message:
    """The interaction's answer: its response if not yet given, else whatever completes the
    deferred "thinking…" message (a public answer replaces the private placeholder)."""
    extra: dict[str, Any] = {"allowed_mentions": NO_PINGS}
    if embed is not None:
        extra["embed"] = embed
    if not interaction.response.is_done():
        await interaction.response.send_message(
            text or None, ephemeral=ephemeral, file=file or discord.utils.MISSING, **extra
        )
        return await interaction.original_response()
    if ephemeral:
        attachments = [file] if file else discord.utils.MISSING
        return await interaction.edit_original_response(
            content=text or None, attachments=attachments, **extra
        )
    await interaction.delete_original_response()
    return await interaction.followup.send(text or "", wait=True, file=file or discord.utils.MISSING, **extra)


async def render(interaction: Interaction, result: CommandResult) -> None:
    pieces = split_all(rendered(result.text), MAX_MESSAGE) or [""]
    file = None
    if result.attachment:
        name, content = result.attachment
        file = discord.File(io.BytesIO(content.encode()), filename=name)
    await first_response(interaction, pieces[0], ephemeral=result.ephemeral, file=file)
    for piece in pieces[1:]:
        await interaction.followup.send(piece, ephemeral=result.ephemeral, allowed_mentions=NO_PINGS)
