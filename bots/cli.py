"""`ember`: the command line. Each subcommand loads settings the same way and says clearly
what is wrong when it cannot start."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO, cast

from bots.run import cmd_run, cmd_status
from bots.studio_cli import add_studio_parser
from bots.usage_cli import add_usage_parser
from core.access import OPERATOR, grant_line
from core.budget import RequestScheduler
from core.config import (
    Settings,
    check_environment,
    database_url,
    find_config,
    load_settings,
)
from core.errors import CommandError, ConfigError, StoreError
from core.events import User
from core.logs import RedactingStream, Redactor, configure_logging
from core.ports import Announcer, PlatformTraits
from core.runtime import Runtime, open_runtime
from core.store import Store

log = logging.getLogger("ember")
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(find_config(getattr(args, "config", None)))


async def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    check_environment(settings)
    aliases = ", ".join(sorted(settings.models))
    print(f"{settings.source}: OK (models: {aliases}; default: {settings.chat.default_model})")
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.open(database_url(settings))
    try:
        await store.upgrade()
    finally:
        await store.close()
    print(f"database is up to date ({store.engine.url.render_as_string(hide_password=True)})")
    return 0


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bots import console

    check_environment(settings)
    if args.model and args.model not in settings.models:
        raise ConfigError(
            "--model", args.model, "is not a configured alias", f"choose one of {sorted(settings.models)}"
        )
    async with open_runtime(settings) as runtime:
        return await console.chat(
            runtime, name=args.as_name, alias=args.model, stdin=sys.stdin, out=sys.stdout
        )


async def cmd_access(args: argparse.Namespace, settings: Settings) -> int:
    """Grant, revoke or list access as the operator: audited as "operator", no platform needed."""
    operator = User(OPERATOR, "operator", args.platform, args.workspace, is_moderator=True)
    async with open_runtime(settings) as runtime:
        service = runtime.access
        try:
            if args.access_command == "grant":
                text = await service.grant(operator, args.workspace, args.user, args.days, args.note)
            elif args.access_command == "revoke":
                text = await service.revoke(operator, args.workspace, args.user, args.reason)
            else:
                grants = await service.grants(args.platform, args.workspace)
                text = "\n".join(grant_line(g, service.now()) for g in grants) or "Nobody has a grant there."
        except CommandError as error:
            print(f"ember: {_plain(error.user_message)}", file=sys.stderr)
            return 1
    print(_plain(text))
    return 0


def _plain(text: str) -> str:
    """Mentions as a terminal shows them: the bare user id."""
    return re.sub(r"<@([^>|]+)(?:\|[^>]*)?>", r"\1", text)


def _add_access_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    access = sub.add_parser("access", parents=[common], help="grant, revoke or list access as the operator")
    actions = access.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--platform", required=True, choices=["discord", "slack"])
    where.add_argument("--workspace", required=True, metavar="ID", help="Discord server id or Slack team id")
    grant = actions.add_parser("grant", parents=[common, where], help="give a member access (or extend it)")
    grant.add_argument("--user", required=True, metavar="ID", help="the member's platform user id")
    grant.add_argument("--days", type=int, metavar="N", help="access ends after N days (default: never)")
    grant.add_argument("--note", default="", help="a note for the audit log")
    revoke = actions.add_parser("revoke", parents=[common, where], help="end a member's access")
    revoke.add_argument("--user", required=True, metavar="ID", help="the member's platform user id")
    revoke.add_argument("--reason", default="", help="told to the member and kept in the audit log")
    actions.add_parser("list", parents=[common, where], help="who has access in a workspace, and until when")
    access.set_defaults(handler=cmd_access)


async def cmd_essays(args: argparse.Namespace, settings: Settings) -> int:
    """`essays status`; `essays poll --once` (poll, deliver, exit: for cron and debugging);
    `essays poll` (the poll loop alone, until interrupted)."""
    async with open_runtime(settings) as runtime:
        service = runtime.essays
        if args.essays_command == "status":
            print("\n".join((await service.status()).lines()))
            return 0
        async with _essay_announcers(runtime):
            if not args.once:
                await service.run()
                return 0
            reports = await service.poll_once()
            for report in reports:
                print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
            print((await service.deliver_pending(wait=args.wait)).summary())
    return 0 if all(r.ok for r in reports) else 1


@dataclass(frozen=True)
class _RestAdapter:
    """What `essays poll` needs of a platform's adapter to announce without chat running."""

    traits: PlatformTraits
    can_announce: Callable[[Settings, Mapping[str, str]], bool]
    rest_announcer: Callable[[Settings, RequestScheduler], AbstractAsyncContextManager[Announcer]]


@asynccontextmanager
async def _essay_announcers(runtime: Runtime) -> AsyncIterator[None]:
    """Announce on the platforms whose tokens are in the environment (REST only: no gateway, no
    socket), each attached and announcing as under `ember run` (`Ember.attach`, `announce_with`):
    its deliveries and its other requests spend the platform's one budget, with its windows.
    Deliveries for the other platforms stay queued for `ember run`."""
    from bots.discord import announcer as discord
    from bots.discord.traits import discord_traits
    from bots.slack import announcer as slack
    from bots.slack.traits import slack_traits
    from core.ember import Ember

    settings = runtime.settings
    adapters = (
        _RestAdapter(discord_traits(settings.discord), discord.can_announce, discord.rest_announcer),
        _RestAdapter(slack_traits(settings.slack), slack.can_announce, slack.rest_announcer),
    )
    ember = Ember(runtime)
    async with AsyncExitStack() as stack:
        for adapter in adapters:
            if adapter.can_announce(settings, os.environ):
                ember.attach(adapter.traits)
                scheduler = ember.scheduler(adapter.traits.platform)
                announcer = await stack.enter_async_context(adapter.rest_announcer(settings, scheduler))
                ember.announce_with(adapter.traits, announcer)
        yield


def _add_essays_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    essays = sub.add_parser("essays", parents=[common], help="newsletter feeds and essay announcements")
    actions = essays.add_subparsers(dest="essays_command", required=True, metavar="ACTION")
    poll = actions.add_parser("poll", parents=[common], help="poll the feeds and deliver announcements")
    poll.add_argument("--once", action="store_true", help="poll every feed now, deliver, then exit")
    poll.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS", help="with --once: wait this long for retries"
    )
    actions.add_parser("status", parents=[common], help="feeds, failures, subscriptions and deliveries")
    essays.set_defaults(handler=cmd_essays)


async def cmd_slack_manifest(args: argparse.Namespace, settings: Settings) -> int:
    from bots.slack.manifest import manifest_json

    print(manifest_json(settings.slack, name=args.name, request_url=args.url))
    return 0


def _add_slack_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    slack = sub.add_parser("slack", parents=[common], help="Slack tools")
    slack_sub = slack.add_subparsers(dest="slack_command", required=True, metavar="ACTION")
    manifest = slack_sub.add_parser(
        "manifest", parents=[common], help="print the app manifest to paste into Slack's app settings"
    )
    manifest.add_argument(
        "--name", default="ember", help="the app's and bot's name in Slack (default: ember)"
    )
    manifest.add_argument(
        "--url",
        default="",
        help="HTTP mode: the public URL of /slack/events (e.g. https://ember.example/slack/events)",
    )
    manifest.set_defaults(handler=cmd_slack_manifest)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        # Accepted before or after the command; a subcommand's own default must not erase a
        # value given earlier on the line, so an absent option sets nothing at all.
        default=argparse.SUPPRESS,
        help="settings file (default: $EMBER_CONFIG, else ./config.toml, else built-in)",
    )
    parser = argparse.ArgumentParser(
        prog="ember", parents=[common], description="A chat-platform home for a retired language model."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="start the configured bots (Discord, Slack, essays)")
    run.set_defaults(handler=cmd_run)

    chat = sub.add_parser(
        "chat", parents=[common], help="chat with the model in this terminal (stdin may be piped)"
    )
    chat.add_argument(
        "--model", metavar="ALIAS", help="model alias to talk to (default: [chat] default_model)"
    )
    chat.add_argument(
        "--as", dest="as_name", metavar="NAME", help="the name the model sees you as (default: $USER)"
    )
    chat.set_defaults(handler=cmd_chat)

    ember_status = sub.add_parser(
        "status", parents=[common], help="how ember is doing; exit 1 when something needs attention"
    )
    ember_status.set_defaults(handler=cmd_status)

    config = sub.add_parser("config", parents=[common], help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check", parents=[common], help="validate the settings file and the environment; exit 0 if good"
    )
    check.set_defaults(handler=cmd_config_check)

    db = sub.add_parser("db", parents=[common], help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser(
        "upgrade", parents=[common], help="apply pending migrations (also done on start)"
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)
    _add_access_parser(sub, common)
    _add_essays_parser(sub, common)
    _add_slack_parser(sub, common)
    add_studio_parser(sub, common)
    add_usage_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    # Until the settings are read, the defaults name the usual secrets; then the configured ones.
    out, err = _redacting(Redactor.for_settings(Settings()))
    try:
        settings = _settings(args)
        out.redact = err.redact = configure_logging(settings)
        return asyncio.run(handler(args, settings))
    except ConfigError as error:
        print(f"ember: configuration error: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"ember: database error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except Exception:
        # Printed here rather than by Python so that it passes through the redactor.
        print(f"ember: unexpected error\n{traceback.format_exc()}", file=sys.stderr, end="")
        return 1
    finally:
        sys.stdout, sys.stderr = out.inner, err.inner


def _redacting(redact: Redactor) -> tuple[RedactingStream, RedactingStream]:
    """Wrap stdout and stderr so that nothing printed shows a secret value."""
    out, err = RedactingStream(sys.stdout, redact), RedactingStream(sys.stderr, redact)
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    return out, err


if __name__ == "__main__":
    raise SystemExit(main())
