"""Group commit: many small writes from concurrent workers share one transaction.

Each caller of `execute` still waits until its own statement is committed and gets its own
rowcount (so compare-and-set works as if alone); only the transaction, and its commit, are
shared. Under load this turns hundreds of tiny transactions a second (each paying a connection
checkout, a thread hop and a commit — and on SQLite a wait for the one writer's lock) into a
few larger ones. The flusher is a task of its own, so a caller being cancelled never strands
the others' writes. If the transaction fails, every statement in it fails with that error.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Update

from core.store.engine import Store


class GroupCommit:
    def __init__(self, store: Store, *, max_batch: int = 200) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: list[tuple[Update, asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def execute(self, statement: Update) -> int:
        """Run `statement` in the next shared transaction; return its rowcount once committed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((statement, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait for every write already handed over (before closing the store)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait({self._flusher})

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                counts = await self._commit(batch)
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(error, Exception):
                    raise
                continue
            for (_, future), count in zip(batch, counts, strict=True):
                if not future.done():
                    future.set_result(count)

    async def _commit(self, batch: list[tuple[Update, asyncio.Future[int]]]) -> list[int]:
        counts = []
        async with self._store.session() as session:
            for statement, _ in batch:
                result = await session.exec(statement.execution_options(synchronize_session=False))
                counts.append(result.rowcount)
        return counts
