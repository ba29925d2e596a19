"""Every sentence essay announcements show people: moderators, members, the operator, the model.

The logic modules decide what happened; this module says it. Text from a feed arrives here as
plain text and leaves defused wherever it lands inside a command's answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: those modules use this one
    from core.essays.delivery import Announcement, DeliveryReport
    from core.essays.poller import FeedReport
    from core.essays.status import EssayStatus, FeedStatus
    from core.store.essay_records import SubscriptionView

DELIVERY_STATES = ("sent", "pending", "sending", "failed", "disabled")
UNTITLED = "(untitled)"
CONTEXT_CUT = "\n\n[The essay continues; the rest is not shown here.]"
# Substack answers 403 to some hosting networks; the fix is on the operator's side.
FORBIDDEN_HINT = " (the feed's host refuses this network; some hosts block data-centre addresses)"


def day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "undated"


def moment(when: datetime | None) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC" if when else "—"


def defuse(text: str) -> str:
    """Feed text shown inside a command's answer: no @everyone, no <!channel>, no <@id>."""
    return text.replace("@", "@\u200b").replace("<", "‹").replace(">", "›")


# ---------------------------------------------------------------- why a feed failed


def fetch_timed_out(deadline: float) -> str:
    return f"no complete answer within {deadline:g} s"


def fetch_failed(error: Exception) -> str:
    return f"could not fetch: {type(error).__name__}: {error}"


def bad_url(error: Exception) -> str:
    return f"bad URL: {error}"


def redirect_refused(scheme: str) -> str:
    return f"refusing to follow a redirect to a non-http(s) URL ({scheme}:)"


def too_many_redirects(limit: int) -> str:
    return f"more than {limit} redirects"


def http_status(status: int, reason: str) -> str:
    text = f"HTTP {status} {reason}".strip()
    return text + FORBIDDEN_HINT if status == 403 else text


def too_large(max_bytes: int) -> str:
    return f"the feed is larger than the {max_bytes:,}-byte limit"


def malformed_xml(problem: Exception) -> str:
    return f"malformed XML: {problem}"


NOT_A_FEED = "the response is not an RSS or Atom feed (an HTML page?)"
NO_ITEMS = "the feed has no items"


def unexpected(error: Exception) -> str:
    return f"unexpected error: {error!r}"


# ---------------------------------------------------------------- the operator's reports


POLLED_ELSEWHERE = "another host is polling it right now; try again in a minute"


def feed_report(report: FeedReport) -> str:
    """What one poll of one feed did (`ember essays poll --once`)."""
    if not report.ok:
        return f"{report.url}: FAILED: {report.error}"
    if report.not_modified:
        return f"{report.url}: not modified since the last poll"
    text = f"{report.url}: {report.items} items"
    if report.first_poll and not report.announced:
        return f"{text}; first poll: recorded {report.recorded}, announced none"
    if report.recorded:
        text += f"; {report.recorded} recorded without announcing (older than max_age_days)"
    if not report.announced:
        return f"{text}; nothing new"
    titles = "; ".join(f'"{t}"' for t in report.announced)
    return f"{text}; announced {titles} ({report.queued} deliveries queued)"


def delivery_report(report: DeliveryReport) -> str:
    text = (
        f"deliveries: {report.sent} sent, {report.retrying} to retry, {report.failed} failed, "
        f"{report.disabled} to channels now paused"
    )
    for platform, count in sorted(report.waiting.items()):
        text += f"; {count} queued for {platform} (its adapter is not running here)"
    return text


def status_lines(status: EssayStatus) -> list[str]:
    """The status as a person reads it (`ember essays status`)."""
    out = [_feed_line(f) for f in status.feeds] or ["no feeds configured ([essays] feeds)"]
    subs = ", ".join(f"{p} {n}" for p, n in sorted(status.subscriptions.items())) or "none"
    out.append(f"subscriptions: {subs}; paused by ember: {status.paused}")
    out.append("deliveries: " + ", ".join(f"{status.deliveries.get(s, 0)} {s}" for s in DELIVERY_STATES))
    out.extend(f"  failed: {e}" for e in status.recent_errors)
    out.append(f"essays: {status.essays} recorded, {status.announced} announced")
    if status.latest:
        latest = status.latest
        out.append(f'latest: "{latest.title}" ({day(latest.published_at)}) {latest.link}')
    return out


def failed_delivery(platform: str, channel_id: str, error: str) -> str:
    return f"{platform}:{channel_id}: {error}"


def _feed_line(feed: FeedStatus) -> str:
    if feed.state == "never polled":
        return f"{feed.url}: not polled yet"
    if feed.state == "failing":
        told = "; moderators told" if feed.alerted else ""
        return (
            f"{feed.url}: FAILING since {moment(feed.first_failure_at)} ({feed.failures} in a row{told}): "
            f"{feed.last_error} — next try {moment(feed.next_poll_at)}"
        )
    return (
        f"{feed.url}: ok, last success {moment(feed.last_success_at)}, next poll {moment(feed.next_poll_at)}"
    )


# ---------------------------------------------------------------- what moderators are told


def feed_failing(url: str, since: datetime | None, error: Exception) -> str:
    return (
        f"The essay feed {url} has been failing since {moment(since)}, so new essays may not be "
        f"announced. Last error: {error}. ember keeps retrying; the operator can see more "
        "with `ember essays status`."
    )


def feed_recovered(url: str) -> str:
    return f"The essay feed {url} works again; announcements resume."


def channel_gone_note(reason: str) -> str:
    """Kept as the paused subscription's reason (`/opus essays list` shows it)."""
    return f"the channel is gone or ember may not post there ({reason})"


def channel_gone(channel_id: str, reason: str, command: str) -> str:
    return (
        f"I can no longer post essay announcements in <#{channel_id}> ({reason}), "
        f"so that subscription is paused. Once I can post there again, a moderator can resume "
        f"it with `{command} essays subscribe <#{channel_id}>`."
    )


def rejected(platform: str, error: Exception) -> str:
    return f"rejected by {platform}: {error}"


def gave_up(attempts: int, error: str) -> str:
    return f"gave up after {attempts} attempts: {error}"


def unsubscribed_by(user_id: str) -> str:
    return f"unsubscribed by {user_id}"


# ---------------------------------------------------------------- command answers


def subscribed(channel_id: str, role_mention: str, created: bool) -> str:
    """`role_mention` is the role as the platform writes it, or "" for none."""
    ping = f", pinging {role_mention}" if role_mention else " (pinging nobody)"
    verb = "will now be announced" if created else "are announced"
    return f"New essays {verb} in <#{channel_id}>{ping}."


def unsubscribed(channel_id: str, changed: bool) -> str:
    if changed:
        return f"Essays will no longer be announced in <#{channel_id}>."
    return f"<#{channel_id}> was not subscribed to essays; nothing changed."


def subscription_list(lines: list[str]) -> str:
    if not lines:
        return "No channel here is subscribed to essays yet."
    return "Essays are announced in:\n" + "\n".join(lines)


def subscription_line(view: SubscriptionView, role_mention: str) -> str:
    ping = f", pinging {role_mention}" if role_mention else ""
    if view.enabled:
        return f"• <#{view.channel_id}>{ping}"
    return f"• <#{view.channel_id}> — paused: {view.disabled_reason}"


NO_ESSAY_YET = "No essay has been seen yet."
IN_A_DM = "in a direct message, name the channel"


def latest_text(essay: Announcement) -> str:
    byline = f" by {defuse(essay.author)}" if essay.author else ""
    date = f", {essay.published_at:%d %B %Y}" if essay.published_at else ""
    lines = [f"**{defuse(essay.title)}**{byline}{date}"]
    if essay.link:
        lines.append(essay.link)
    if essay.summary:
        lines.append(defuse(essay.summary))
    return "\n".join(lines)


# ---------------------------------------------------------------- what the model reads


def discussion_prompt(essay: Announcement, max_chars: int) -> str:
    """The system text for a discussion thread: which essay, then the essay itself."""
    text = essay.full_text or essay.summary
    if len(text) > max_chars:
        text = text[:max_chars] + CONTEXT_CUT
    byline = f" by {essay.author}" if essay.author else ""
    published = f", published {essay.published_at:%d %B %Y}" if essay.published_at else ""
    return (
        f'This thread is a discussion of the essay "{essay.title}"{byline}{published}'
        f"{f' ({essay.link})' if essay.link else ''}, from your newsletter. "
        f"The people here have read it and want to talk about it with you. Its full text:\n\n{text}"
    )
