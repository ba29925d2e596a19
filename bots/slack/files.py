"""Images shared with a message, fetched for the model.

Slack serves files at `url_private`, readable with the bot token. The token is only ever sent to
Slack's own file host (or the configured API host, for proxies and tests), and each image is
capped in size while it downloads, so a huge or hostile file costs little.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp

from bots.slack.convert import FileRef
from core import IMAGE_TYPES, MAX_IMAGE_BYTES, Attachment

log = logging.getLogger(__name__)

SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
TIMEOUT = aiohttp.ClientTimeout(total=30)


class FileFetcher:
    def __init__(self, session: aiohttp.ClientSession, token: str, *, api_base_url: str = "") -> None:
        self._session = session
        self._token = token
        self._hosts = set(SLACK_FILE_HOSTS)
        if api_base_url:
            self._hosts.add(urlsplit(api_base_url).netloc)

    async def attachments(self, refs: Sequence[FileRef]) -> tuple[Attachment, ...]:
        """Every file as an Attachment; readable images carry their bytes."""
        data = await asyncio.gather(*(self._image(ref) for ref in refs))
        return tuple(ref.attachment(blob) for ref, blob in zip(refs, data, strict=True))

    async def _image(self, ref: FileRef) -> bytes | None:
        if ref.media_type not in IMAGE_TYPES or ref.size > MAX_IMAGE_BYTES:
            return None  # the conversation builder notes why it was left out
        if urlsplit(ref.url).netloc not in self._hosts:
            log.warning("not sending the bot token to %s for file %s", urlsplit(ref.url).netloc, ref.name)
            return None
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.get(ref.url, headers=headers, timeout=TIMEOUT) as response:
                if response.status != 200 or not response.content_type.startswith("image/"):
                    # Without files:read Slack answers with a sign-in page, not the image.
                    log.warning(
                        "could not read file %s: HTTP %s %s", ref.name, response.status, response.content_type
                    )
                    return None
                blob = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    blob += chunk
                    if len(blob) > MAX_IMAGE_BYTES:
                        return None  # larger than it said: stop reading
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("could not download file %s: %s", ref.name, error)
            return None
        return bytes(blob)
