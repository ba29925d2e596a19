"""The platforms ember serves, as their adapters describe them.

Each adapter attaches its `PlatformTraits` when it starts; the services ask `Platforms.of(name)`
for a fact (what a workspace is called, whether DMs are answered, how a role is mentioned)
instead of branching on a platform's name. A platform no adapter has described (a command run
from the operator's shell about a platform that is not running here) gets neutral wording.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from core.events import Platform
from core.ports import PlatformTraits


def unattached(platform: str) -> PlatformTraits:
    """Plain facts for a platform whose adapter is not here: neutral words, DMs answered."""
    return PlatformTraits(
        platform=cast(Platform, platform),
        space_word="workspace",
        user_mention="@{id}",
        role_mention="@{id}",
        allow_dms=True,
        max_message_chars=2000,
        edit_interval=1.0,
    )


class Platforms:
    def __init__(self, attached: Iterable[PlatformTraits] = ()) -> None:
        self._traits: dict[str, PlatformTraits] = {traits.platform: traits for traits in attached}

    def attach(self, traits: PlatformTraits) -> None:
        self._traits[traits.platform] = traits

    def of(self, platform: str) -> PlatformTraits:
        return self._traits.get(platform) or unattached(platform)

    def is_attached(self, platform: str) -> bool:
        return platform in self._traits
