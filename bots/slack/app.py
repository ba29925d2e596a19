"""The slack-bolt app: a Web API client, an AsyncApp, and `register` wiring listeners to the core.

Nothing is global: `serve` (or a test, or the benchmark) builds a client and an app and calls
`register`, which returns the `SlackBot` the listeners share.
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack import announcer as essay_announcer
from bots.slack import commands as slash_commands
from bots.slack import inbound, notifier, shortcuts, studio
from bots.slack.bot import SlackBot
from bots.slack.files import FileFetcher
from bots.slack.notifier import SlackNotifier
from bots.slack.people import People
from bots.slack.traits import PLATFORM, slack_traits
from core import Ember, Settings, secret
from core.budget import RequestScheduler


def build_app(
    settings: Settings, client: AsyncWebClient, environ: Mapping[str, str] | None = None
) -> AsyncApp:
    """In HTTP mode every request must carry a valid signature (and a fresh timestamp); Socket
    Mode traffic arrives over the app's own authenticated connection and needs none."""
    http = settings.slack.mode == "http"
    signing_secret = (
        secret(settings.slack.signing_secret_env, "slack.signing_secret_env", settings.source, environ)
        if http
        else None
    )
    return AsyncApp(
        client=client,
        signing_secret=signing_secret,
        request_verification_enabled=http,
        # ember acknowledges first and works after; Slack never waits on the model.
        process_before_response=False,
    )


def register(
    app: AsyncApp, ember: Ember, client: AsyncWebClient, *, files: FileFetcher | None = None
) -> SlackBot:
    """Wire every listener to the facade and attach Slack to it; returns what the listeners share."""
    settings = ember.settings

    def budget() -> RequestScheduler:
        """Slack's one request scheduler (it exists once Slack is attached, below)."""
        return ember.scheduler(PLATFORM)

    people = People(
        client,
        moderator_groups=settings.slack.moderator_roles,
        # Reviewers of the studio's drafts are proven by their user groups too.
        member_groups=[*settings.access.member_roles, *settings.studio.slack.reviewer_groups],
        budget=budget,
    )
    commands = ember.commands(settings.slack.command)
    bot = SlackBot(ember, settings.slack, client, people, commands, files=files)
    traits = slack_traits(settings.slack)
    # No history reader: Slack's conversations are read from ember's own store.
    ember.attach(
        traits, notifier=SlackNotifier(client, settings.slack.mod_channel, budget), reopen=bot.reopen
    )
    inbound.register(app, bot)
    slash_commands.register(app, bot)
    shortcuts.register(app, bot)
    notifier.register(app, bot)
    essay_announcer.register(app, bot, traits)  # essay announcements flow through this client
    studio.register(app, bot, traits)  # and the studio's drafts, for review
    return bot
