"""Telling people about access: the adapter's `Notifier`, registered per platform.

A notice that cannot be delivered never undoes or fails the change it reports: the change is
stored either way, and the answer to the moderator says whether the member was told."""

from __future__ import annotations

import logging

from core.access.values import RequestView
from core.ports import Notifier

log = logging.getLogger(__name__)


class Notices:
    """The registered notifiers, and delivery that logs failures instead of raising them."""

    def __init__(self) -> None:
        self._notifiers: dict[str, Notifier] = {}

    def register(self, platform: str, notifier: Notifier) -> None:
        self._notifiers[platform] = notifier

    async def to_moderators(self, request: RequestView) -> bool:
        """Post a new request; False when it waits in `access pending` instead."""
        notifier = self._notifiers.get(request.platform)
        if notifier is None:
            log.info(
                "no %s notifier: access request #%d waits in `access pending`", request.platform, request.id
            )
            return False
        try:
            await notifier.notify_moderators(request.workspace_id, request)
        except Exception:
            # The request is stored either way; moderators still find it with `access pending`.
            log.exception("could not post access request #%d to the moderators", request.id)
            return False
        return True

    async def to_member(self, platform: str, workspace_id: str, user_id: str, text: str) -> bool:
        """DM a member; False when they could not be told."""
        notifier = self._notifiers.get(platform)
        if notifier is None:
            log.info("no %s notifier: could not tell %s: %s", platform, user_id, text)
            return False
        try:
            return await notifier.tell_member(workspace_id, user_id, text)
        except Exception:
            log.exception("could not tell %s about their access", user_id)
            return False
