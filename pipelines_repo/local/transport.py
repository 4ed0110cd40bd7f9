"""An httpx transport that serves requests from the local plane's ASGI app in this process.

httpx's own ASGITransport is async-only; our client is synchronous. This transport runs the app
on an event loop owned by the calling thread, so a request costs no thread hand-off: the store
call blocks only its caller, exactly as a synchronous HTTP call would. A caller that is itself
inside a running event loop is served by one shared loop in a daemon thread instead. Either way
the in-process plane speaks the same HTTP as the served one, with no port.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

from .app import create_app
from .faults import Faults
from .store import LocalStore

_shared_lock = threading.Lock()
_shared: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _shared
    with _shared_lock:
        if _shared is None or _shared.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="bt-local-plane", daemon=True).start()
            _shared = loop
        return _shared


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class InProcessTransport(httpx.BaseTransport):
    """Sync httpx transport over the local plane app (no socket, no auth)."""

    BASE_URL = "http://local.braintrust"

    def __init__(self, db_path: str | Path, *, faults: Faults | None = None):
        self.store = LocalStore(db_path)
        self._asgi = httpx.ASGITransport(app=create_app(self.store, faults=faults, offload=False))
        self._loops = threading.local()

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        loop = getattr(self._loops, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._loops.loop = asyncio.new_event_loop()
        return loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)

        async def call() -> tuple[int, Any, bytes]:
            response = await self._asgi.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers, content

        if _in_running_loop():
            status, headers, content = asyncio.run_coroutine_threadsafe(call(), _shared_loop()).result()
        else:
            status, headers, content = self._own_loop().run_until_complete(call())
        headers = [(k, v) for k, v in headers.multi_items() if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        loop = getattr(self._loops, "loop", None)
        if loop is not None and not loop.is_closed():
            loop.close()
        self.store.close()
