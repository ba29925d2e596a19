"""Everything access by request says to people: refusals, answers, DMs and audit details.

The logic modules hold no sentences; they call these. Moments are UTC, mentions are `<@id>`
(which Discord and Slack both render)."""

from __future__ import annotations

from datetime import datetime, timedelta

from core.access.grant_plan import GrantChange
from core.access.values import OPERATOR, RequestView
from core.config import Settings

MODERATORS_ONLY = "Approving and denying requests is for moderators only; nothing was changed."
NOT_MY_BUTTON = "That button isn't one of mine."
NO_DIRECT_MESSAGES = "I don't answer direct messages here; please talk to me in a channel."
BOTS_CANNOT_REQUEST = "Bots can't request access."
ALREADY_ASKED = "You've already asked, and the moderators haven't decided yet. You'll hear back by DM."
NOTHING_TO_WITHDRAW = "You have no request waiting, so there is nothing to withdraw."
WITHDRAWN = "Done: your request is withdrawn."


# ---------------------------------------------------------------- names and moments


def model_name(settings: Settings) -> str:
    alias = settings.chat.default_model
    return settings.models[alias].display_name or alias


def mention(user_id: str) -> str:
    """`<@id>` renders as a mention on both Discord and Slack."""
    return f"<@{user_id}>" if user_id != OPERATOR else "the operator"


def when_text(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def in_text(delta: timedelta) -> str:
    """A friendly 'in …' for a reset time: days, else hours and minutes."""
    minutes = max(1, int(delta.total_seconds() // 60))
    if minutes >= 48 * 60:
        return f"in {(minutes + 12 * 60) // (24 * 60)} days"  # to the nearest day
    hours, minutes = divmod(minutes, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


def told(member_told: bool) -> str:
    return "They've been told by DM." if member_told else "I couldn't DM them, so please let them know."


# ---------------------------------------------------------------- bad input


def too_long(what: str, length: int, limit: int) -> str:
    return f"the {what} is {length} characters long; please keep it to {limit}"


def bad_days(days: int, limit: int) -> str:
    return f"days should be a whole number from 1 to {limit}, not {days}"


def run_in_a_channel(space: str) -> str:
    return f"Access is per {space}: please run this in a channel there, not in a DM."


# ---------------------------------------------------------------- the gate


def by_invitation(name: str, model: str) -> str:
    return (
        f"Sorry, {name}: talking with {model} here is by invitation of the moderators, "
        "so I can't answer you yet. If you'd like to join in, please ask one of them."
    )


def request_waiting(name: str, model: str) -> str:
    return (
        f"Thanks for your patience, {name}: your request to talk with {model} is with "
        "the moderators. You'll hear back by DM."
    )


def how_to_ask(name: str, model: str, command: str, space: str, *, direct: bool) -> str:
    where = f" in a channel of a {space} where I live" if direct else ""
    return (
        f"Hi {name}! Talking with {model} here is by request, because every reply costs "
        f"real money. You can ask with `{command} access request [reason]`"
        f"{where}, and the moderators will get back to you."
    )


def daily_messages_reached(limit: int, model: str, until_reset: timedelta) -> str:
    return f"You've reached today's limit of {limit} messages to {model}. {_resets(until_reset)}"


def daily_tokens_reached(limit: int, model: str, until_reset: timedelta) -> str:
    return f"You've reached today's limit of {limit:,} tokens with {model}. {_resets(until_reset)}"


def _resets(until_reset: timedelta) -> str:
    return f"It resets at 00:00 UTC, {in_text(until_reset)}."


def monthly_budget_spent(space: str, budget_usd: float, model: str, renews: datetime, now: datetime) -> str:
    return (
        f"This {space} has used its monthly budget of "
        f"${budget_usd:,.2f} for {model}. It resets on "
        f"{renews.day} {renews:%B} at 00:00 UTC, {in_text(renews - now)}."
    )


def still_writing(running: int) -> str:
    replies = "a reply" if running == 1 else f"{running} replies"
    return f"I'm still writing {replies} for you; please wait until it's finished, then ask again."


# ---------------------------------------------------------------- members asking


def ask_from_a_channel(space: str) -> str:
    return f"Access is given per {space}, so please ask from a channel there."


def no_need_to_ask(model: str) -> str:
    return f"No need to ask: everyone may talk with {model} here."


def requests_closed(model: str) -> str:
    return (
        f"Requests are closed here: talking with {model} is by invitation of the moderators. "
        "If you'd like to join in, please ask one of them."
    )


def already_has_access(model: str, expires_at: datetime | None) -> str:
    until = f" until {when_text(expires_at)}" if expires_at else ""
    return f"You already have access to {model} here{until}; no need to ask."


def cooling_down(denied_at: datetime, again_at: datetime) -> str:
    return (
        f"The moderators decided on your last request at {when_text(denied_at)}. "
        f"You can ask again after {when_text(again_at)}."
    )


def request_filed(name: str, *, moderators_told: bool) -> str:
    if not moderators_told:
        return f"Thanks, {name}! Your request is recorded; the moderators will see it and you'll hear back."
    return f"Thanks, {name}! Your request is with the moderators; you'll hear back by DM."


# ---------------------------------------------------------------- moderators deciding


def no_such_request(request_id: int) -> str:
    return f"There is no access request #{request_id} here."


def no_pending_request(target_id: str) -> str:
    return f"{mention(target_id)} has no pending request here; nothing changed."


def too_late(request: RequestView) -> str:
    if request.status == "withdrawn":
        return f"{mention(request.user_id)} withdrew request #{request.id}; nothing changed."
    return (
        f"Request #{request.id} from {mention(request.user_id)} was already {request.status} by "
        f"{mention(request.decided_by)} at {when_text(request.decided_at)}; nothing changed."
    )


def approved(request: RequestView, change: GrantChange, member_told: bool) -> str:
    return f"Approved request #{request.id}: {mention(request.user_id)} {grant_outcome(change)} {told(member_told)}"


def denied(request: RequestView, member_told: bool) -> str:
    return f"Denied request #{request.id} from {mention(request.user_id)}. {told(member_told)}"


def decision_summary(request: RequestView | None) -> str:
    """One line for the moderators' channel message, e.g. "Approved by <@U1> at …"."""
    if request is None or request.status == "pending":
        return ""
    when = f" at {when_text(request.decided_at)}" if request.decided_at else ""
    return f"{request.status.capitalize()} by {mention(request.decided_by)}{when}."


def grant_outcome(change: GrantChange) -> str:
    if change.action == "extend":
        end = f"to {when_text(change.expires_at)}" if change.expires_at else "with no end date"
        return f"already had access until {when_text(change.previous_expiry)}; extended {end}."
    return f"now has access until {when_text(change.expires_at)}." if change.expires_at else "now has access."


def granted(target_id: str, change: GrantChange, member_told: bool) -> str:
    return f"{mention(target_id)} {grant_outcome(change)} {told(member_told)}"


def already_forever(target_id: str) -> str:
    return f"{mention(target_id)} already has access here with no end date; nothing changed."


def nothing_to_revoke(target_id: str) -> str:
    return f"{mention(target_id)} has no access grant here to revoke; nothing changed."


def revoked(target_id: str, member_told: bool) -> str:
    return f"Revoked {mention(target_id)}'s access. {told(member_told)}"


# ---------------------------------------------------------------- what members are told by DM


def granted_dm(model: str, change: GrantChange) -> str:
    until = f" until {when_text(change.expires_at)}" if change.expires_at else ""
    if change.action == "extend":
        return f"Your access to {model} has been extended{until or ' with no end date'}."
    return f"Good news: you may now talk with {model}{until}. Say hello whenever you like!"


def denied_dm(model: str, reason: str) -> str:
    because = f" Reason: {reason}" if reason else ""
    return f"The moderators decided not to give you access to {model} for now.{because}"


def revoked_dm(model: str, reason: str) -> str:
    because = f" Reason: {reason}" if reason else ""
    return f"A moderator has ended your access to {model}.{because}"


def expired_dm(model: str, command: str) -> str:
    return (
        f"Your access to {model} has ended. If you'd like to keep talking, "
        f"ask again with `{command} access request`."
    )


# ---------------------------------------------------------------- the audit log's details


def approval_note(request_id: int, reason: str) -> str:
    """The note on a grant made by approving a request."""
    return reason or f"request #{request_id}"


def grant_detail(change: GrantChange) -> str:
    if change.action == "extend":
        return f"extended from {when_text(change.previous_expiry)} to {when_text(change.expires_at)}"
    return f"until {when_text(change.expires_at)}" if change.expires_at else "no end date"


def grant_audit(change: GrantChange, note: str) -> str:
    return grant_detail(change) + (f"; note: {note}" if note else "")


def decision_audit(request_id: int, change: GrantChange | None, reason: str) -> str:
    detail = f"request #{request_id}" + (f"; {grant_detail(change)}" if change else "")
    return detail + (f"; reason: {reason}" if reason else "")


def reason_audit(reason: str) -> str:
    return f"reason: {reason}" if reason else ""


def expiry_audit(expires_at: datetime | None) -> str:
    return f"ended at {when_text(expires_at)}"
