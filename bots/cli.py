"""`ember`: the command line. Each subcommand loads settings the same way and says clearly
what is wrong when it cannot start."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from core.config import Settings, check_environment, find_config, load_settings
from core.errors import ConfigError, StoreError
from core.logs import configure_logging
from core.runtime import open_runtime
from core.store import Store

log = logging.getLogger("ember")
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(find_config(args.config))


async def cmd_config_check(args: argparse.Namespace, settings: Settings) -> int:
    check_environment(settings)
    aliases = ", ".join(sorted(settings.models))
    print(f"{settings.source}: OK (models: {aliases}; default: {settings.chat.default_model})")
    return 0


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    store = Store.open(settings.database.url)
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


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bots import console

    check_environment(settings)
    async with open_runtime(settings) as runtime:
        services = _platform_services(runtime)
        if not services:
            log.warning("no Discord or Slack token is set; chatting in this terminal instead")
            return await console.chat(runtime, name=None, alias=None, stdin=sys.stdin, out=sys.stdout)
        await asyncio.gather(*services)
    return 0


def _platform_services(runtime: Any) -> list[Coroutine[Any, Any, None]]:
    """The long-running services whose credentials are present (filled in by each adapter)."""
    return []


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = _settings(args)
        configure_logging(settings)
        return asyncio.run(handler(args, settings))
    except ConfigError as error:
        print(f"ember: configuration error: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"ember: database error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
