"""What chat says to people, in one place, so every platform says it the same way.

The core writes the small neutral markup (`*…*` italics, `**…**` bold, backticks); adapters
render it.
"""

from __future__ import annotations

# Someone writing to ember directly where DMs are off hears this one line, never silence.
DMS_OFF = "I don't take direct messages here. Mention me in a channel instead."

# Reply buttons, told privately to whoever pressed one.
NOT_YOURS = "Only the person who asked, or a moderator, can use these buttons."
NOTHING_TO_STOP = "That reply has already finished."
NOTHING_BEING_WRITTEN = "Nothing is being written here right now."
# The message shortcut that stops a reply from any message of its conversation (Slack).
STOP_REPLY = "Stop the reply"
GONE = "That reply is no longer stored (it may have been forgotten), so it cannot be redone."

# The ending of a reply that did not finish normally.
STOPPED_BEFORE_ANYTHING = "*(stopped before the model said anything)*"
PLATFORM_REFUSED = "the platform refused the reply"
# Ends a reply still running when ember stopped past its shutdown grace: its buttons would
# point at a reply no process is writing any more, so this note replaces them.
INTERRUPTED = "*(ember restarted before this reply finished; please ask again)*"

# The name of the message shortcut (Slack) and message menu command (Discord) that shows a
# conversation's prompt privately: the same words on every platform.
SHOW_PROMPT = "Show the prompt"

NOTHING_SAID_YET = "Nothing has been said here yet, so the model would see only its system prompt."


def error_ending(error: str, *, reply_started: bool) -> str:
    """What ends a reply that failed: a note under the text so far, or the error alone."""
    return f"\n\n*({error})*" if reply_started else error


def fallback_note(asked: str, answering: str) -> str:
    """Heads a reply from another model than the one asked for: never silently."""
    return f"*({asked} is unavailable right now; this answer is from {answering}.)*\n\n"


def continued_by(writer: str) -> str:
    """Heads the continuation of an answer another model than the one asked for wrote."""
    return f"*(continued by {writer}, which wrote this answer)*\n\n"


def prompt_summary(messages: int, estimated_tokens: int, dropped: int) -> str:
    return (
        f"The model would receive {messages} messages "
        f"(about {estimated_tokens:,} tokens; {dropped} older messages trimmed)."
    )


def channel_talks_to(name: str, alias: str, choices: list[str]) -> str:
    listed = ", ".join(f"`{a}`" for a in choices)
    return f"This channel talks to **{name}** (`{alias}`). Available: {listed}."


def channel_now_talks_to(name: str, alias: str) -> str:
    return f"This channel now talks to **{name}** (`{alias}`)."


def no_such_alias(alias: str, choices: list[str]) -> str:
    return f"there is no model alias {alias!r}; choose one of {', '.join(choices)}"


def forgotten(messages: int, replies: int) -> str:
    return (
        f"Done: deleted {messages} of your messages and {replies} replies to you. "
        "Usage records keep their token counts but no longer name you; this month's still "
        "count toward your limits."
    )
