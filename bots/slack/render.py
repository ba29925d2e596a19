"""What ember shows in Slack: escaped text, reply blocks with buttons, short private lines.

Model text is never trusted as markup. Slack reads `<...>` as mentions and links (`<!channel>`,
`<@U1>`, `<https://evil|innocent>`), so every `&`, `<` and `>` leaves as an entity and reaches
people as the plain characters. Both places replies show in — mrkdwn text and the Markdown of
`chat.*Stream` and `markdown` blocks — turn those three entities back into characters. The
Markdown would still read `[words](https://elsewhere)` as a link that hides where it goes, so
model text passes `core.markup.visible_links` first (`model_text`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core import Control, RequestView, control_id, markup, split_once

Block = dict[str, Any]

# One message's text, after escaping: the Markdown limit of chat.startStream/appendStream and of
# `markdown` blocks. mrkdwn `text` would allow more, but a reply renders the same on both paths.
MESSAGE_LIMIT = 12_000

# Mentions that ping one person at most (or no one: a channel), by Slack's id shapes.
LIVE_MENTION = {"user": re.compile(r"^[UW][A-Z0-9]+$"), "channel": re.compile(r"^C[A-Z0-9]+$")}

_BUTTON_STYLE = {Control.STOP: "danger", Control.CONTINUE: "primary"}


def escape(text: str) -> str:
    """Slack's three control characters as entities: the text shows, nothing is parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def model_text(text: str) -> str:
    """The model's words for a reply: escaped, and every link's destination shown."""
    return escape(markup.visible_links(text))


def trusted(text: str) -> str:
    """Text ember wrote itself (command answers, notices), in the core's neutral markup
    (`core.markup`), as mrkdwn: person and channel mentions stay live, anything else in angle
    brackets (names and reasons people typed, `<!channel>`) is shown, not parsed."""
    return "".join(map(_mrkdwn, markup.parse(text)))


def _mrkdwn(span: markup.Span) -> str:
    if isinstance(span, markup.Text):
        return escape(span.text)
    if isinstance(span, markup.Code):
        return f"```{escape(span.text)}```" if span.block else f"`{escape(span.text)}`"
    if isinstance(span, markup.Bold):
        return "*" + "".join(map(_mrkdwn, span.parts)) + "*"
    return _mention(span)


def _mention(span: markup.Mention) -> str:
    """People and channels as Slack mentions. A user group is shown by id, never pinged:
    core text answers one person, and a group ping would reach everyone in it."""
    shape = LIVE_MENTION.get(span.kind)
    if shape is not None and shape.match(span.id):
        return f"<{'@' if span.kind == 'user' else '#'}{span.id}>"
    if span.kind == "role":
        return escape(f"@{span.id}")
    return escape(markup.plain((span,)))


def fit(text: str, limit: int) -> list[str]:
    """Cut raw `text` into pieces whose rendered form (`model_text`) is at most `limit` characters.

    Escaping can grow text fivefold (`&` → `&amp;`), so the raw cut shrinks until the rendered
    piece fits; `split_once` keeps cuts on boundaries and code fences balanced.
    """
    pieces: list[str] = []
    while text:
        room = limit
        head, rest = split_once(text, room)
        while len(model_text(head)) > limit and room > 16:
            room = max(16, room * limit // len(model_text(head)) - 8)
            head, rest = split_once(text, room)
        pieces.append(head)
        text = rest
    return pieces


def buttons(reply_id: str, controls: Sequence[Control]) -> Block | None:
    """An actions block with one button per control, or None when there are none."""
    if not controls:
        return None
    elements = []
    for control in controls:
        button: Block = {
            "type": "button",
            "action_id": control_id(control, reply_id),
            "text": {"type": "plain_text", "text": control.label},
            "value": reply_id,
        }
        if control in _BUTTON_STYLE:
            button["style"] = _BUTTON_STYLE[control]
        elements.append(button)
    return {"type": "actions", "elements": elements}


def reply_blocks(escaped: str, reply_id: str, controls: Sequence[Control]) -> list[Block]:
    """A reply message: its (already escaped) Markdown text, then its buttons."""
    blocks: list[Block] = [{"type": "markdown", "text": escaped}]
    actions = buttons(reply_id, controls)
    if actions is not None:
        blocks.append(actions)
    return blocks


def asked(user_id: str, prompt: str) -> str:
    """The root message of an `/opus ask` thread: who asked, and their words, quoted and inert."""
    quoted = "\n".join(f">{escape(line)}" for line in prompt.splitlines() or [""])
    return f"<@{user_id}> asked:\n{quoted}"


def code_block(content: str) -> str:
    """Command output shown inline, as an inert code block (mrkdwn)."""
    return f"```\n{escape(content)}\n```"


def access_request_blocks(request: RequestView, *, decided: str = "") -> list[Block]:
    """An access request in the moderators' channel: who, why, and Approve / Deny buttons.

    Once decided, the buttons give way to one line saying who decided and when.
    """
    reason = escape(request.reason) if request.reason else "_no reason given_"
    text = f"*Access request* from <@{request.user_id}> ({escape(request.user_name)})\n>{reason}"
    blocks: list[Block] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if decided:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": decided}]})
        return blocks
    approve = {
        "type": "button",
        "action_id": request.approve_id,
        "text": {"type": "plain_text", "text": "Approve"},
        "style": "primary",
        "value": str(request.id),
    }
    deny = {
        "type": "button",
        "action_id": request.deny_id,
        "text": {"type": "plain_text", "text": "Deny"},
        "style": "danger",
        "value": str(request.id),
    }
    blocks.append({"type": "actions", "elements": [approve, deny]})
    return blocks
