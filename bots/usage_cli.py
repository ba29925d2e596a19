"""`ember usage`: a workspace's month of usage for the operator, as text or CSV."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any

from core.access import report_csv, report_lines
from core.chat import usage
from core.config import Settings
from core.runtime import open_runtime


def month_argument(text: str) -> datetime:
    """`--month YYYY-MM`, the first moment of that month (UTC)."""
    if not re.fullmatch(r"\d{4}-\d{2}", text):
        raise argparse.ArgumentTypeError(f"--month {text!r}: write the month as YYYY-MM, e.g. 2026-11")
    year, month = (int(part) for part in text.split("-"))
    if not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"--month {text!r}: the month must be 01 to 12")
    return datetime(year, month, 1, tzinfo=UTC)


async def cmd_usage(args: argparse.Namespace, settings: Settings) -> int:
    month = args.month or usage.month_start(datetime.now(UTC))
    async with open_runtime(settings) as runtime:
        report = await usage.month_report(
            runtime.store, platform=args.platform, workspace_id=args.workspace, month=month, top=args.top
        )
    if args.csv:
        print(report_csv(report), end="")
    else:
        space = "server" if args.platform == "discord" else "workspace"
        # Mentions as a terminal shows them: the bare user id.
        print(re.sub(r"<@([^>|]+)(?:\|[^>]*)?>", r"\1", "\n".join(report_lines(report, month, space))))
    return 0


def add_usage_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "usage", parents=[common], help="a workspace's month of usage, by member and by model and backend"
    )
    parser.add_argument("--platform", required=True, choices=["discord", "slack"])
    parser.add_argument("--workspace", required=True, metavar="ID", help="Discord server id or Slack team id")
    parser.add_argument(
        "--month", type=month_argument, metavar="YYYY-MM", help="the UTC month (default: this one)"
    )
    parser.add_argument("--csv", action="store_true", help="comma-separated values, one row per line")
    parser.add_argument("--top", type=int, default=10, metavar="N", help="members listed (default: 10)")
    parser.set_defaults(handler=cmd_usage)
