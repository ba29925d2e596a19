"""A workspace's month of usage as people read it (`/opus usage` for moderators, `ember usage`)
and as a spreadsheet reads it (`ember usage --csv`)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from core.access.wording import mention
from core.chat import usage
from core.store.pseudonyms import FORGOTTEN
from core.store.usage_report import UsageLine, UsageReport

CSV_COLUMNS = (
    "kind",
    "who",
    "replies",
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_read_tokens",
    "cost_usd",
)


def report_lines(report: UsageReport, month: datetime, space: str) -> list[str]:
    """The month by member (the top ones) and by model and backend."""
    label = month.strftime("%B %Y")
    if not report.total.replies and not report.total.tokens:
        return [f"Nothing was used in this {space} in {label}."]
    lines = [f"This {space} in {label} (UTC): {_figures(report.total)}.", "By member:"]
    lines += [f"- {member_name(line.who)}: {_figures(line)}" for line in report.members]
    lines.append("By model and backend:")
    for line in report.backends:
        alias, provider, model = line.who.split(" ", 2)
        lines.append(f"- {alias} on {provider} ({model}): {_figures(line)}")
    return lines


def report_csv(report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = [("total", report.total)]
    rows += [("member", line) for line in report.members]
    rows += [("backend", line) for line in report.backends]
    for kind, line in rows:
        writer.writerow(
            (
                kind,
                line.who,
                line.replies,
                line.input_tokens,
                line.output_tokens,
                line.cache_write_tokens,
                line.cache_read_tokens,
                f"{line.cost_micros / 1_000_000:.6f}",
            )
        )
    return out.getvalue()


def member_name(user_id: str) -> str:
    """A mention, except for rows whose member asked to be forgotten."""
    if user_id == FORGOTTEN:
        return "forgotten members (earlier months)"
    if user_id.startswith("~"):
        return "a member who was forgotten"
    return mention(user_id)


def _figures(line: UsageLine) -> str:
    replies = "1 reply" if line.replies == 1 else f"{line.replies} replies"
    return f"{replies}, {line.tokens:,} tokens, {usage.format_dollars(line.cost_micros)}"
