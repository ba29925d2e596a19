"""The `[studio]` section: the model's own essays, drafted on a schedule, reviewed by people and
published unedited (core/studio). Its values are checked like every other section's (the rules
in core.config_rules); `check_studio` checks what depends on other sections."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from core.config_rules import (
    DiscordId,
    DiscordRole,
    DiscordUser,
    HttpUrl,
    NonEmpty,
    OptionalHttpUrl,
    PositiveInt,
    SlackId,
    SlackUser,
    SlackUserGroup,
    clock_time,
)
from core.config_walk import suggest
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Settings

DEFAULT_DISCLAIMER = (
    "Written by the model itself and published as written: it speaks for itself, "
    "not for this community or its moderators."
)
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@dataclass(frozen=True)
class StudioDiscord:
    """Where drafts are reviewed on Discord, and who may decide them."""

    review_channel: Annotated[str, DiscordId("channel", optional=True)] = ""
    reviewer_roles: list[DiscordRole] = field(default_factory=list)
    reviewer_users: list[DiscordUser] = field(default_factory=list)

    @property
    def reviewer_group_ids(self) -> tuple[str, ...]:
        return tuple(self.reviewer_roles)


@dataclass(frozen=True)
class StudioSlack:
    """Where drafts are reviewed on Slack, and who may decide them."""

    review_channel: Annotated[str, SlackId("channel", "CG", optional=True)] = ""
    reviewer_groups: list[SlackUserGroup] = field(default_factory=list)
    reviewer_users: list[SlackUser] = field(default_factory=list)

    @property
    def reviewer_group_ids(self) -> tuple[str, ...]:
        return tuple(self.reviewer_groups)


@dataclass(frozen=True)
class StudioSettings:
    """The model's own essays: drafted on a schedule, reviewed by people, published unedited."""

    enabled: bool = False
    # "" writes with [chat] default_model.
    alias: str = ""
    schedule: Literal["off", "daily", "weekly"] = "weekly"
    day: Weekday = "monday"  # for "weekly"
    time: Annotated[str, clock_time] = "09:00"  # UTC
    strategy: Literal["minimal", "past_entries", "with_news"] = "minimal"
    past_entries: PositiveInt = 3
    news_feeds: list[HttpUrl] = field(default_factory=list)
    news_items: PositiveInt = 5
    max_tokens: PositiveInt = 4096
    approvals: PositiveInt = 1
    disclaimer: Annotated[str, NonEmpty("write one line shown with every published essay")] = (
        DEFAULT_DISCLAIMER
    )
    title: Annotated[str, NonEmpty('name the feed, e.g. "Essays from Claude Opus 3"')] = "The model's essays"
    # Where the [server] endpoints are reached from outside ("" : http://host:health_port).
    public_url: OptionalHttpUrl = ""
    discord: StudioDiscord = field(default_factory=StudioDiscord)
    slack: StudioSlack = field(default_factory=StudioSlack)

    def writer(self, settings: Settings) -> str:
        """The alias that writes the essays."""
        return self.alias or settings.chat.default_model

    def review_platforms(self) -> list[str]:
        """The platforms whose review channel is set: drafts are posted there."""
        sections: dict[str, StudioDiscord | StudioSlack] = {"discord": self.discord, "slack": self.slack}
        return [name for name, section in sections.items() if section.review_channel]

    def reviewing(self, platform: str) -> StudioDiscord | StudioSlack | None:
        """The platform's review section (None: a platform without one, the terminal)."""
        section = getattr(self, platform, None)
        return section if isinstance(section, (StudioDiscord, StudioSlack)) else None


def check_studio(settings: Settings) -> None:
    """The studio's keys that depend on other sections."""
    studio, file = settings.studio, settings.source
    if studio.alias and studio.alias not in settings.models:
        raise ConfigError(
            file,
            "studio.alias",
            f"alias {studio.alias!r} does not exist",
            suggest(studio.alias, settings.models),
        )
    if studio.strategy == "with_news" and not studio.news_feeds:
        fix = 'add news_feeds = ["https://…/feed"], or choose strategy = "minimal"'
        raise ConfigError(file, "studio.news_feeds", 'is empty, but strategy is "with_news"', fix)
