"""Discord objects → the core's neutral values. Pure functions, plus one that downloads images.

Ids become strings; a thread is a place inside its parent channel (so per-channel settings hold
in its threads); a DM has no workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Literal

import discord

from core import IMAGE_TYPES, MAX_IMAGE_BYTES, Attachment, Message, Place, User

log = logging.getLogger(__name__)

PLATFORM: Literal["discord"] = "discord"
AnyChannel = (
    discord.abc.GuildChannel | discord.Thread | discord.abc.PrivateChannel | discord.PartialMessageable
)


def place_of(channel: AnyChannel) -> Place:
    if isinstance(channel, discord.Thread):
        return Place(PLATFORM, str(channel.guild.id), str(channel.parent_id), str(channel.id))
    if isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return Place(PLATFORM, "", str(channel.id), is_direct=True)
    guild_id = getattr(channel, "guild_id", None) or getattr(getattr(channel, "guild", None), "id", None)
    if guild_id is None:
        return Place(PLATFORM, "", str(channel.id), is_direct=True)
    return Place(PLATFORM, str(guild_id), str(channel.id))


def can_manage_server(member: discord.Member, permissions: discord.Permissions | None = None) -> bool:
    """Manage Server, from the interaction's resolved permissions when Discord sent them."""
    return (permissions or member.guild_permissions).manage_guild


def has_moderator_role(member: discord.Member, moderator_roles: Collection[str]) -> bool:
    return any(str(role.id) in moderator_roles for role in member.roles)


def user_of(
    author: discord.User | discord.Member,
    moderator_roles: Collection[str],
    permissions: discord.Permissions | None = None,
) -> User:
    if not isinstance(author, discord.Member):
        return User(str(author.id), author.display_name, PLATFORM, is_bot=author.bot)
    return User(
        id=str(author.id),
        name=author.display_name,
        platform=PLATFORM,
        workspace_id=str(author.guild.id),
        role_ids=tuple(str(role.id) for role in author.roles),
        is_moderator=can_manage_server(author, permissions) or has_moderator_role(author, moderator_roles),
        is_bot=author.bot,
    )


def media_type(attachment: discord.Attachment) -> str:
    return (attachment.content_type or "application/octet-stream").split(";")[0].strip().lower()


def wanted_image(attachment: discord.Attachment) -> bool:
    """Worth downloading: a kind and size the model accepts (the API's own limits)."""
    return media_type(attachment) in IMAGE_TYPES and attachment.size <= MAX_IMAGE_BYTES


async def attachment_of(attachment: discord.Attachment, *, download: bool) -> Attachment:
    data: bytes | None = None
    if download and wanted_image(attachment):
        try:
            data = await attachment.read()
        except discord.HTTPException as error:
            # The conversation builder tells the model the image was skipped; say why here.
            log.warning("could not download image %s: %s", attachment.url, error)
        if data is not None and len(data) > MAX_IMAGE_BYTES:
            data = None
    return Attachment(
        filename=attachment.filename,
        media_type=media_type(attachment),
        size=attachment.size,
        url=attachment.url,
        data=data,
        width=attachment.width,
        height=attachment.height,
    )


def asker_of(message: discord.Message, me: discord.abc.Snowflake) -> tuple[discord.User, str] | None:
    """An `ask` starter is ember's own message holding someone's prompt (the answer to their
    slash command): read back, it is that person's words, not ember's."""
    metadata = message.interaction_metadata
    if message.author.id != me.id or metadata is None or not message.embeds:
        return None
    prompt = message.embeds[0].description
    return (metadata.user, prompt) if prompt else None


async def message_of(
    message: discord.Message,
    me: discord.abc.Snowflake,
    moderator_roles: Collection[str],
    *,
    place: Place | None = None,
    images: bool = False,
) -> Message:
    """One Discord message as the core sees it. `images` downloads image attachments (only
    for the messages the model should look at: bytes are costly to fetch and to send)."""
    asked = asker_of(message, me)
    author = asked[0] if asked else message.author
    text = asked[1] if asked else message.clean_content
    attachments = [await attachment_of(a, download=images) for a in message.attachments]
    reference = message.reference
    return Message(
        id=str(message.id),
        place=place or place_of(message.channel),
        author=user_of(author, moderator_roles),
        text=text,
        attachments=tuple(attachments),
        reply_to=str(reference.message_id) if reference and reference.message_id else "",
        created_at=message.created_at,
        is_bot=author.bot and author.id != me.id,
        from_self=author.id == me.id,
    )
