"""Where discord.py sends its REST calls and opens its gateway: Discord itself, or a proxy.

discord.py 2.7 has exactly two knobs, both class attributes read at call time:

- `discord.http.Route.BASE` ("https://discord.com/api/v10"): every REST call, including
  interaction callbacks and webhook follow-ups (they build `Route`s too), is `BASE + path`.
  A proxy URL therefore includes the API version path: "http://proxy:8080/api/v10".
- `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` ("wss://gateway.discord.gg/"): a plain
  `discord.Client` never asks `GET /gateway/bot`; it connects here and adds
  `?v=10&encoding=json&compress=zlib-stream`. Only `AutoShardedClient` asks `/gateway/bot`
  and uses the URL it returns.

Resumes go to the READY event's `resume_gateway_url`, not to `DEFAULT_GATEWAY`: a gateway
proxy must rewrite that field, or resumed sessions bypass it.

Both knobs are process-wide, so a test that points discord.py somewhere must put it back:
`with discord_endpoints(api, gateway): ...` does that.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


@dataclass(frozen=True)
class Endpoints:
    """The REST base (with its `/api/v10` path) and the gateway URL discord.py uses."""

    api_base_url: str
    gateway_url: str


def current_endpoints() -> Endpoints:
    return Endpoints(api_base_url=Route.BASE, gateway_url=str(DiscordWebSocket.DEFAULT_GATEWAY))


def point_discord_at(base_url: str = "", gateway_url: str = "") -> Endpoints:
    """Send discord.py's REST calls to `base_url` and its gateway connection to `gateway_url`.

    An empty string leaves that knob as it is (the `[discord] api_base_url` / `gateway_url`
    defaults mean "Discord itself"). Returns the endpoints in force before, for
    `restore_endpoints`.
    """
    previous = current_endpoints()
    if base_url:
        Route.BASE = _checked_url(base_url, ("http", "https"), "api_base_url").rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_checked_url(gateway_url, ("ws", "wss"), "gateway_url"))
    return previous


def restore_endpoints(previous: Endpoints) -> None:
    Route.BASE = previous.api_base_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(previous.gateway_url)


@contextmanager
def discord_endpoints(base_url: str = "", gateway_url: str = "") -> Iterator[Endpoints]:
    """`point_discord_at` for the duration of a `with` block; yields the endpoints now in force."""
    previous = point_discord_at(base_url, gateway_url)
    try:
        yield current_endpoints()
    finally:
        restore_endpoints(previous)


def _checked_url(url: str, schemes: tuple[str, ...], key: str) -> str:
    parsed = yarl.URL(url)
    if parsed.scheme not in schemes or not parsed.host:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"[discord] {key} must be an absolute {wanted} URL, not {url!r}")
    return url
