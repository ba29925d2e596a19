"""What `/opus access …` and `/opus usage` print: standings, listings and usage figures."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.access.values import AuditEntry, GrantView, RequestView, Standing
from core.access.wording import in_text, mention, when_text
from core.chat import usage

NO_REQUESTS = "No requests are waiting."
NO_GRANTS = "Nobody has a grant here yet."
NOTHING_RECORDED = "Nothing has been recorded yet."


def cannot_find(user_id: str) -> str:
    return f"I can't find {mention(user_id)} here; please check the mention."


def is_a_bot(user_id: str) -> str:
    return f"{mention(user_id)} is a bot; access is for people."


def also_member_role(error: str) -> str:
    return f"{error} They may chat through a member role; change their roles to stop that."


def standing_text(standing: Standing, model: str, user_id: str, *, own: bool, space: str, ask: str) -> str:
    """Whether and why someone may talk here. `ask` is the command to request access with,
    "" where asking is not how access is had."""
    subject, have = ("You", "have") if own else (mention(user_id), "has")
    if standing.via == "grant" and standing.grant is not None:
        grant = standing.grant
        until = f"until {when_text(grant.expires_at)}" if grant.expires_at else "with no end date"
        return f"{subject} {have} access to {model} here {until}, granted by {mention(grant.granted_by)}."
    reasons = {
        "operator": "This is the operator's terminal, where access rules don't apply.",
        "open": f"Everyone may talk with {model} here.",
        "bot": f"{subject} may talk with {model}, because bots are allowed here.",
        "moderator": f"{subject} may always talk with {model}: moderators may.",
        "role": f"{subject} may talk with {model} here through a member role.",
        "grant": f"{subject} may talk with {model} here through access in a {space} where I live.",
    }
    if standing.via:
        return reasons[standing.via]
    if standing.pending is not None:
        whose = "Your" if own else f"{mention(user_id)}'s"
        return f"{whose} request from {when_text(standing.pending.created_at)} is waiting for the moderators."
    lacks = "You don't have" if own else f"{mention(user_id)} doesn't have"
    text = f"{lacks} access to {model} here."
    if ask:
        text += f" You can ask with `{ask} access request [reason]`."
    return text


def pending_text(requests: list[RequestView]) -> tuple[str, str]:
    """The listing, and the line to send instead when it is attached as a file."""
    lines = [f"{len(requests)} waiting (approve with the buttons or `access grant`):"]
    lines += [_request_line(r) for r in requests]
    return "\n".join(lines), f"{len(requests)} requests are waiting; the list is attached."


def _request_line(request: RequestView) -> str:
    reason = f' — "{request.reason}"' if request.reason else ""
    return f"#{request.id} {mention(request.user_id)}, asked {when_text(request.created_at)}{reason}"


def grants_text(grants: list[GrantView], now: datetime) -> tuple[str, str]:
    lines = [f"{len(grants)} with access:"] + [grant_line(g, now) for g in grants]
    return "\n".join(lines), f"{len(grants)} people have access; the list is attached."


def grant_line(grant: GrantView, now: datetime) -> str:
    if grant.expires_at is None:
        until = "no end date"
    else:
        until = f"expires {when_text(grant.expires_at)} ({in_text(grant.expires_at - now)})"
    note = f' — "{grant.note}"' if grant.note else ""
    return f"{mention(grant.user_id)}: {until}, granted by {mention(grant.granted_by)}{note}"


def audit_text(entries: list[AuditEntry]) -> tuple[str, str]:
    lines = ["Newest first:"] + [_audit_line(e) for e in entries]
    return "\n".join(lines), f"The last {len(entries)} changes are attached."


def _audit_line(entry: AuditEntry) -> str:
    detail = f" ({entry.detail})" if entry.detail else ""
    target = "" if entry.target_id == entry.actor_id else f" → {mention(entry.target_id)}"
    return f"{when_text(entry.at)} {entry.action}: {mention(entry.actor_id)}{target}{detail}"


def usage_lines(
    model: str, user_id: str, *, own: bool, today: usage.UsageTotals, month: usage.UsageTotals
) -> list[str]:
    whose = "Your" if own else f"{mention(user_id)}'s"
    return [
        f"{whose} use of {model} here (UTC days and months):",
        f"Today: {_figures(today)}.",
        f"This month: {_figures(month)}.",
    ]


def daily_limit_line(messages: int, tokens: int, until_reset: timedelta) -> str:
    parts = [f"{messages} messages"] if messages else []
    parts += [f"{tokens:,} tokens"] if tokens else []
    return f"Daily limit: {' and '.join(parts)}; it resets {in_text(until_reset)}."


def budget_line(space: str, spent_micros: int, budget_usd: float) -> str:
    return (
        f"This {space} has spent {usage.format_dollars(spent_micros)} of its "
        f"${budget_usd:,.2f} monthly budget."
    )


def _figures(totals: usage.UsageTotals) -> str:
    messages = "1 message" if totals.requests == 1 else f"{totals.requests} messages"
    return f"{messages}, {totals.tokens:,} tokens, {usage.format_dollars(totals.cost_micros)}"
