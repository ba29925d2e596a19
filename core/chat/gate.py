"""Who may talk to the model: the gate the engine passes every request through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from core.events import Place, User


class AccessGate(Protocol):
    """Decides who may talk to the model. Entering raises AccessDenied with a kind message;
    leaving releases whatever the gate held (e.g. a concurrent-reply slot)."""

    def admit(
        self, user: User, place: Place, *, taken_over: bool = False
    ) -> AbstractAsyncContextManager[None]:
        """`taken_over`: the reply was begun by a host that died, holding the member's reply
        slot (a lease that lapses on its own): it is checked as any reply, but takes no slot."""
        ...

    async def charged_workspace(self, user: User, place: Place) -> str:
        """The workspace that pays for `user`'s reply in `place`: the place's own, except for a
        direct message that names none, which is charged where the member's access comes from."""
        ...


class OpenGate:
    """Everyone may talk: the default until access by request is configured."""

    @asynccontextmanager
    async def admit(self, user: User, place: Place, *, taken_over: bool = False) -> AsyncIterator[None]:
        yield

    async def charged_workspace(self, user: User, place: Place) -> str:
        return place.workspace_id
