"""A remote-like plane (`local serve --latency-ms N --btql-rate-limit R`): network latency and
Braintrust's BTQL rate limit, so request-heavy clients pay locally what they pay in the cloud.

Installed around the whole app (server.py), as the network and the cloud's rate limiter sit in
front of the service: a 429 it answers never reaches the plane, so `/local/stats` does not count
it. `/local/*` (the plane's own stats and history routes, which benchmarks read) is exempt.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from .routes.common import error


@dataclass(frozen=True)
class RemoteLike:
    """What to imitate: `latency_ms` added to every response; above `btql_rate_limit` POST /btql
    requests within a sliding `btql_window_s` window (Braintrust's lower plans: about 20 a minute),
    a 429 with Retry-After."""

    latency_ms: float = 0.0
    btql_rate_limit: int | None = None
    btql_window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.latency_ms < 0:
            raise ValueError("--latency-ms must be >= 0")
        if self.btql_rate_limit is not None and self.btql_rate_limit < 1:
            raise ValueError("--btql-rate-limit must be at least 1 (a request a window)")
        if self.btql_window_s <= 0:
            raise ValueError("the BTQL rate window must be positive")

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.btql_rate_limit is not None


class SlidingWindow:
    """Admits at most `limit` events in any `window` seconds; a refused event takes no slot, so a
    client that waits out Retry-After is admitted."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.admitted: deque[float] = deque()

    def admit(self) -> float | None:
        """None when admitted, else the seconds until a slot frees."""
        now = self.clock()
        while self.admitted and self.admitted[0] <= now - self.window:
            self.admitted.popleft()
        if len(self.admitted) < self.limit:
            self.admitted.append(now)
            return None
        return self.admitted[0] + self.window - now


class RemoteLikeMiddleware:
    """Plain ASGI (like CountingMiddleware): it sees every request and never needs the body."""

    def __init__(self, app: Any, remote: RemoteLike):
        self.app = app
        self.delay = remote.latency_ms / 1000
        self.window = (SlidingWindow(remote.btql_rate_limit, remote.btql_window_s)
                       if remote.btql_rate_limit is not None else None)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/local/"):
            await self.app(scope, receive, send)
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.window is not None and scope["method"] == "POST" and scope["path"] == "/btql":
            wait = self.window.admit()
            if wait is not None:
                # Integer seconds (the common Retry-After form), rounded up so a retry is admitted.
                seconds = max(1, math.ceil(wait))
                response = error(429, f"BTQL rate limit: at most {self.window.limit} requests in "
                                      f"{self.window.window:g} s (remote-like plane); retry after {seconds} s",
                                 headers={"Retry-After": str(seconds)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
