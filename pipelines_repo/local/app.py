"""The local data plane's HTTP API: the subset of Braintrust's REST API the SDK, bt and our client use.

Routes, shapes and status codes follow Braintrust (Braintrust API semantics: docs/BT_COMPAT.md;
module layout: docs/ARCHITECTURE.md). The routes live in `local.routes`, one module per resource.
Every error is JSON with a `message` that names the cause and the fix.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from .faults import FaultMiddleware, Faults
from .read_workers import ReadWorkers
from .routes import ROUTES
from .routes.common import EXCEPTION_HANDLERS, AuthMiddleware, CountingMiddleware
from .store import LocalStore


def create_app(
    store: LocalStore, *, api_key: str | None = None, faults: Faults | None = None, offload: bool = True,
    read_workers: ReadWorkers | None = None,
) -> Starlette:
    """Build the ASGI app. With `api_key`, every request needs that Bearer key.

    `offload` runs store calls in a worker thread so a served plane keeps answering while one
    request reads or writes; the in-process transport turns it off (its loop serves one caller).
    `read_workers` answers `/btql` queries in reader processes (see `read_workers.py`).
    """
    counts: dict[str, int] = {}
    middleware = [Middleware(CountingMiddleware, counts=counts)]
    if api_key:
        middleware.append(Middleware(AuthMiddleware, api_key=api_key))
    if faults is not None:
        middleware.append(Middleware(FaultMiddleware, faults=faults))
    app = Starlette(routes=ROUTES, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)
    app.state.store = store
    app.state.offload = offload
    app.state.read_workers = read_workers
    app.state.request_counts = counts
    return app
