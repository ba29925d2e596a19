"""A streaming reply's progress, saved while it streams, for the hosts that share the database.

Were this host to die mid-reply, another host finishes the reply from where it stopped
(`core.chat.takeover`): for that it needs the text shown so far and the platform messages it is
in. Those are written to the reply's row about once a second while either changes, and only
where several hosts share the database (on SQLite nobody else could use them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from core.chat.streaming import StreamingReply
from core.store.chat_repo import ChatRepo

log = logging.getLogger(__name__)

SAVE_EVERY = 1.0  # seconds between looks; a save is one small UPDATE, made only on a change


@contextlib.asynccontextmanager
async def saving_progress(
    records: ChatRepo, reply_id: str, reply: StreamingReply, row_written: asyncio.Task[None]
) -> AsyncIterator[None]:
    """While the block runs, keep the reply's row up to date with what `reply` has shown."""
    saver = asyncio.create_task(_save(records, reply_id, reply, row_written), name="ember-reply-progress")
    try:
        yield
    finally:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver


async def _save(
    records: ChatRepo, reply_id: str, reply: StreamingReply, row_written: asyncio.Task[None]
) -> None:
    with contextlib.suppress(Exception):  # its failure is the reply's own to report
        await asyncio.shield(row_written)  # the row must exist before it is updated
    saved: tuple[int, int] = (0, 0)
    while True:
        await asyncio.sleep(SAVE_EVERY)
        now = (len(reply.handles), len(reply.text))
        if not reply.handles or now == saved:
            continue
        try:
            await records.save_progress(reply_id, reply.text, list(reply.handles))
            saved = now
        except Exception as error:  # a missed save costs a resume from an earlier point
            log.warning("could not save the progress of reply %s: %r", reply_id, error)
