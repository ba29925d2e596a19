"""Pseudonyms for forgotten members: forgetting erases who someone is, not what they used.

`/opus forget` deletes a member's messages, the replies to them and their name. Their usage
rows from this month stay, under a pseudonym instead of their id: an HMAC of platform,
workspace and user keyed with a salt that lives only in this database (written once, on first
use). Limits look a member up under both names, so today's and this month's counts still apply
after forgetting; nothing in the row says who it was without the database's salt and a guess of
the id. Older rows keep no name at all ("forgotten").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from core.store.engine import Store
from core.store.models import UsageSalt

FORGOTTEN = "forgotten"  # the user id of rows older than the month a member was forgotten in
_SALT_ID = 1  # the one row of `usage_salt`


def pseudonym(salt: bytes, platform: str, workspace_id: str, user_id: str) -> str:
    """The id a forgotten member's rows carry; `~` keeps it apart from every platform's ids."""
    who = "\x1f".join((platform, workspace_id, user_id)).encode()
    return "~" + hmac.new(salt, who, hashlib.sha256).hexdigest()[:40]


class Pseudonyms:
    """`Pseudonyms(store)`: reads (or, the first time ever, writes) the salt once, then keeps it,
    so keep one per service."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._salt: bytes | None = None

    async def of(self, platform: str, workspace_id: str, user_id: str) -> str:
        return pseudonym(await self.salt(), platform, workspace_id, user_id)

    async def salt(self) -> bytes:
        if self._salt is None:
            self._salt = await self._read() or await self._create()
        return self._salt

    async def _read(self) -> bytes | None:
        async with self._store.reading() as session:
            row = await session.get(UsageSalt, _SALT_ID)
        return bytes.fromhex(row.salt) if row else None

    async def _create(self) -> bytes:
        # Two processes may race to create it: the first insert wins and both read that one.
        insert = self._store.insert(UsageSalt).values(id=_SALT_ID, salt=secrets.token_hex(32))
        async with self._store.session() as session:
            await session.exec(insert.on_conflict_do_nothing(index_elements=["id"]))
            row = await session.get(UsageSalt, _SALT_ID)
        assert row is not None  # written just now, or by whoever won the race
        return bytes.fromhex(row.salt)
