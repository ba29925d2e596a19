"""`ember studio draft [--strategy S]`, `ember studio list` and `ember studio repost <id>`: the
essay studio from a shell."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.config import Settings, check_environment
from core.errors import ModelError
from core.runtime import open_runtime
from core.studio import wording
from core.studio.prompts import STRATEGIES


async def cmd_studio(args: argparse.Namespace, settings: Settings) -> int:
    if args.studio_command == "draft":
        return await _draft(args, settings)
    if args.studio_command == "repost":
        return await _repost(args, settings)
    async with open_runtime(settings) as runtime:
        by_state = await runtime.studio.by_state()
        not_posted = await runtime.studio.not_posted()
    for state, drafts in by_state.items():
        print(f"{state.value} ({len(drafts)})")
        for draft in drafts:
            print(f"  {wording.draft_line(draft)}")
    # A draft no reviewer on a platform has seen: said apart, so the operator cannot miss it.
    print(f"previews not posted ({len(not_posted)})")
    for preview in not_posted:
        print(f"  {wording.not_posted_line(preview)}")
    return 0


async def _repost(args: argparse.Namespace, settings: Settings) -> int:
    async with open_runtime(settings) as runtime:
        draft = await runtime.studio.draft(args.id)
        platforms = await runtime.studio.repost(args.id, "operator") if draft is not None else []
    if draft is None:
        print(f"ember: {wording.NO_SUCH_DRAFT}", file=sys.stderr)
        return 1
    print(wording.reposted(args.id, platforms))
    return 0 if platforms else 1


async def _draft(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.studio.enabled:
        print(f"ember: {wording.STUDIO_OFF}", file=sys.stderr)
        return 1
    check_environment(settings)
    async with open_runtime(settings) as runtime:
        try:
            draft = await runtime.studio.draft_now("operator", args.strategy)
        except ModelError as error:
            print(f"ember: {error.kind}: {error}", file=sys.stderr)
            return 1
    print(wording.drafted(draft))
    return 0


def add_studio_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    studio = sub.add_parser("studio", parents=[common], help="the model's own essays: drafts and review")
    actions = studio.add_subparsers(dest="studio_command", required=True, metavar="ACTION")
    draft = actions.add_parser("draft", parents=[common], help="have the model write a draft now")
    draft.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=None,
        help="the prompt strategy (default: [studio] strategy)",
    )
    actions.add_parser("list", parents=[common], help="drafts by state, and previews not posted")
    repost = actions.add_parser(
        "repost", parents=[common], help="post a draft's preview again where posting it failed"
    )
    repost.add_argument("id", type=int, help="the draft's number")
    studio.set_defaults(handler=cmd_studio)
