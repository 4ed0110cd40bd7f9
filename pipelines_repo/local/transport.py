"""An httpx transport that serves requests from the local plane's ASGI app in this process.

httpx's own ASGITransport is async-only; our client is synchronous. This transport runs the app
on one event loop in a daemon thread and hands each request to it, so the in-process plane
speaks the same HTTP as the served one, with no port.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

from .app import Faults, create_app
from .store import LocalStore

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="bt-local-plane", daemon=True).start()
            _loop = loop
        return _loop


class InProcessTransport(httpx.BaseTransport):
    """Sync httpx transport over the local plane app (no socket, no auth)."""

    BASE_URL = "http://local.braintrust"

    def __init__(self, db_path: str | Path, *, faults: Faults | None = None):
        self.store = LocalStore(db_path)
        self._asgi = httpx.ASGITransport(app=create_app(self.store, faults=faults))
        self._loop = _shared_loop()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, Any, bytes]:
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        headers = [(k, v) for k, v in headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self.store.close()
