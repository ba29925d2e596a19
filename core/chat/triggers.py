"""When ember answers a message: one rule for every platform.

Adapters gather the platform facts into `Trigger`; `should_answer` decides. Keeping the rule
here means Discord and Slack can never disagree about, say, whether other bots are answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import ChatSettings


@dataclass(frozen=True)
class Trigger:
    mentions_bot: bool = False
    replies_to_bot: bool = False
    in_bot_thread: bool = False  # a thread ember opened or already talks in
    is_direct: bool = False
    in_room_channel: bool = False  # every message there is addressed to the model
    from_self: bool = False
    from_bot: bool = False
    # How many bot-written messages precede this one in its reply chain (loop guard).
    bot_depth: int = 0


def refuses_direct(trigger: Trigger, *, allow_dms: bool) -> bool:
    """A person (not a bot, not ember) writing directly where DMs are off: answer `wording.DMS_OFF`."""
    return trigger.is_direct and not allow_dms and not trigger.from_self and not trigger.from_bot


def should_answer(trigger: Trigger, chat: ChatSettings, *, allow_dms: bool) -> bool:
    if trigger.from_self:
        return False
    if trigger.from_bot and (not chat.allow_bots or trigger.bot_depth >= chat.max_bot_depth):
        return False
    if trigger.is_direct:
        return allow_dms
    return trigger.mentions_bot or trigger.replies_to_bot or trigger.in_bot_thread or trigger.in_room_channel
