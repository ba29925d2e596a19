"""ember's core, as adapters see it: the facade (`Ember`), the ports adapters implement
(`PlatformTraits` and the protocols), the neutral values (events, outcomes, results) and the few
helpers every adapter shares. Import from here, not from the modules behind it.

    from core import Ember, Message, Place, PlatformTraits, User

Names load on first use (PEP 562), so importing any `core.*` module costs no more than that
module, and the core's own modules may import each other in any order.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.access import BUTTON_PREFIX as ACCESS_BUTTON_PREFIX
    from core.access import ButtonAction, RequestView
    from core.access import button_id as access_button_id
    from core.access import parse_button_id as parse_access_button_id
    from core.chat import Outcome
    from core.chat.controls import PREFIX as REPLY_BUTTON_PREFIX
    from core.chat.controls import Control, control_id, controls_for, parse_control_id
    from core.chat.payload import IMAGE_TYPES, MAX_IMAGE_BYTES
    from core.chat.streaming import split_all, split_once
    from core.chat.triggers import Trigger
    from core.chat.wording import SHOW_PROMPT as SHOW_PROMPT_LABEL
    from core.chat.wording import STOP_REPLY as STOP_REPLY_LABEL
    from core.commands import CommandResult, Commands, CommandSpec, Param, ParamKind
    from core.config import ChatSettings, Settings, secret
    from core.config_platforms import DiscordSettings, SlackSettings
    from core.ember import Ember
    from core.errors import (
        ChannelGone,
        CommandError,
        ConfigError,
        DeliveryError,
        DeliveryRejected,
        RateLimited,
        retry_after_seconds,
    )
    from core.essays import Announcement, Delivery
    from core.events import Attachment, Message, Place, Platform, User, utcnow
    from core.ports import (
        Announcer,
        ArrivedMessage,
        AskThread,
        Directory,
        HistoryReader,
        Notifier,
        PlatformTraits,
        PressedAccessButton,
        PressedReplyButton,
        PressedStudioButton,
        Question,
        ReplyOpener,
        ReplySink,
        ReplySurface,
        ReviewDesk,
        Said,
    )
    from core.runtime import Runtime
    from core.studio import DraftPreview, parse_studio_button_id
    from core.studio.preview import PREFIX as STUDIO_BUTTON_PREFIX

__all__ = [
    "ACCESS_BUTTON_PREFIX",
    "IMAGE_TYPES",
    "MAX_IMAGE_BYTES",
    "REPLY_BUTTON_PREFIX",
    "SHOW_PROMPT_LABEL",
    "STOP_REPLY_LABEL",
    "STUDIO_BUTTON_PREFIX",
    "Announcement",
    "Announcer",
    "ArrivedMessage",
    "AskThread",
    "Attachment",
    "ButtonAction",
    "ChannelGone",
    "ChatSettings",
    "CommandError",
    "CommandResult",
    "CommandSpec",
    "Commands",
    "ConfigError",
    "Control",
    "Delivery",
    "DeliveryError",
    "DeliveryRejected",
    "Directory",
    "DiscordSettings",
    "DraftPreview",
    "Ember",
    "HistoryReader",
    "Message",
    "Notifier",
    "Outcome",
    "Param",
    "ParamKind",
    "Place",
    "Platform",
    "PlatformTraits",
    "PressedAccessButton",
    "PressedReplyButton",
    "PressedStudioButton",
    "Question",
    "RateLimited",
    "ReplyOpener",
    "ReplySink",
    "ReplySurface",
    "RequestView",
    "ReviewDesk",
    "Runtime",
    "Said",
    "Settings",
    "SlackSettings",
    "Trigger",
    "User",
    "access_button_id",
    "control_id",
    "controls_for",
    "parse_access_button_id",
    "parse_control_id",
    "parse_studio_button_id",
    "retry_after_seconds",
    "secret",
    "split_all",
    "split_once",
    "utcnow",
]

# Where each public name lives: (module, name there).
_HOMES: dict[str, tuple[str, str]] = {
    "ACCESS_BUTTON_PREFIX": ("core.access", "BUTTON_PREFIX"),
    "Announcement": ("core.essays", "Announcement"),
    "Announcer": ("core.ports", "Announcer"),
    "ArrivedMessage": ("core.ports", "ArrivedMessage"),
    "AskThread": ("core.ports", "AskThread"),
    "Attachment": ("core.events", "Attachment"),
    "ButtonAction": ("core.access", "ButtonAction"),
    "ChannelGone": ("core.errors", "ChannelGone"),
    "ChatSettings": ("core.config", "ChatSettings"),
    "CommandError": ("core.errors", "CommandError"),
    "CommandResult": ("core.commands", "CommandResult"),
    "CommandSpec": ("core.commands", "CommandSpec"),
    "Commands": ("core.commands", "Commands"),
    "ConfigError": ("core.errors", "ConfigError"),
    "Control": ("core.chat.controls", "Control"),
    "Delivery": ("core.essays", "Delivery"),
    "DeliveryError": ("core.errors", "DeliveryError"),
    "DeliveryRejected": ("core.errors", "DeliveryRejected"),
    "Directory": ("core.ports", "Directory"),
    "DraftPreview": ("core.studio", "DraftPreview"),
    "DiscordSettings": ("core.config_platforms", "DiscordSettings"),
    "Ember": ("core.ember", "Ember"),
    "HistoryReader": ("core.ports", "HistoryReader"),
    "IMAGE_TYPES": ("core.chat.payload", "IMAGE_TYPES"),
    "MAX_IMAGE_BYTES": ("core.chat.payload", "MAX_IMAGE_BYTES"),
    "Message": ("core.events", "Message"),
    "Notifier": ("core.ports", "Notifier"),
    "Outcome": ("core.chat", "Outcome"),
    "Param": ("core.commands", "Param"),
    "ParamKind": ("core.commands", "ParamKind"),
    "Place": ("core.events", "Place"),
    "Platform": ("core.events", "Platform"),
    "PlatformTraits": ("core.ports", "PlatformTraits"),
    "PressedAccessButton": ("core.ports", "PressedAccessButton"),
    "PressedReplyButton": ("core.ports", "PressedReplyButton"),
    "PressedStudioButton": ("core.ports", "PressedStudioButton"),
    "Question": ("core.ports", "Question"),
    "REPLY_BUTTON_PREFIX": ("core.chat.controls", "PREFIX"),
    "SHOW_PROMPT_LABEL": ("core.chat.wording", "SHOW_PROMPT"),
    "STOP_REPLY_LABEL": ("core.chat.wording", "STOP_REPLY"),
    "STUDIO_BUTTON_PREFIX": ("core.studio.preview", "PREFIX"),
    "RateLimited": ("core.errors", "RateLimited"),
    "ReplyOpener": ("core.ports", "ReplyOpener"),
    "ReplySink": ("core.ports", "ReplySink"),
    "ReplySurface": ("core.ports", "ReplySurface"),
    "ReviewDesk": ("core.ports", "ReviewDesk"),
    "RequestView": ("core.access", "RequestView"),
    "Runtime": ("core.runtime", "Runtime"),
    "Said": ("core.ports", "Said"),
    "Settings": ("core.config", "Settings"),
    "SlackSettings": ("core.config_platforms", "SlackSettings"),
    "Trigger": ("core.chat.triggers", "Trigger"),
    "User": ("core.events", "User"),
    "access_button_id": ("core.access", "button_id"),
    "control_id": ("core.chat.controls", "control_id"),
    "controls_for": ("core.chat.controls", "controls_for"),
    "parse_access_button_id": ("core.access", "parse_button_id"),
    "parse_control_id": ("core.chat.controls", "parse_control_id"),
    "parse_studio_button_id": ("core.studio", "parse_studio_button_id"),
    "retry_after_seconds": ("core.errors", "retry_after_seconds"),
    "secret": ("core.config", "secret"),
    "split_all": ("core.chat.streaming", "split_all"),
    "split_once": ("core.chat.streaming", "split_once"),
    "utcnow": ("core.events", "utcnow"),
}


def __getattr__(name: str) -> object:
    try:
        module, attribute = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module 'core' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
