"""What every route shares: JSON errors, body and parameter parsing, store calls, auth and counting.

Errors are JSON with a `message` that names the cause and the fix; `EXCEPTION_HANDLERS` maps
store and query errors to their status codes.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..query import QueryError
from ..store import BadInput, LocalStore, StoreError


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error every route and middleware answers with."""
    return JSONResponse({"message": message}, status_code=status, headers=headers)


async def json_body(request: Request) -> Any:
    """Parse the body as JSON whatever the Content-Type (the SDK posts /logs3 without one)."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"request body is not valid JSON ({exc}): send a JSON object") from exc


def object_body(body: Any, what: str) -> dict[str, Any]:
    """`body` if it is a JSON object, else a 400 naming `what` it should have been."""
    if not isinstance(body, dict):
        raise BadInput(f"{what} body must be a JSON object")
    return body


def store_of(request: Request) -> LocalStore:
    """The store the app serves."""
    return request.app.state.store


async def run(request: Request, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call a store method, in a worker thread when the app offloads (a served plane keeps answering)."""
    if request.app.state.offload:
        return await run_in_threadpool(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def list_args(request: Request) -> dict[str, Any]:
    """The paging parameters of a list route (`ids`, `limit`, `starting_after`, `ending_before`)."""
    q = request.query_params
    limit = q.get("limit")
    if limit is not None and not limit.isdigit():
        raise BadInput(f"limit must be a non-negative integer, got {limit!r}")
    if q.get("starting_after") and q.get("ending_before"):
        raise BadInput("pass only one of starting_after and ending_before")
    return {
        "ids": q.getlist("ids") or None,
        "limit": int(limit) if limit is not None else None,
        "starting_after": q.get("starting_after"),
        "ending_before": q.get("ending_before"),
    }


def version_param(value: Any) -> int | None:
    """A `version` parameter (a decimal `_xact_id`) as an int; absent or empty means head."""
    if value in (None, ""):
        return None
    try:
        parsed = int(str(value))
    except ValueError as exc:
        raise BadInput(f"version must be a decimal transaction id (_xact_id), got {value!r}") from exc
    if parsed < 0:
        raise BadInput("version must be a non-negative transaction id")
    return parsed


class CountingMiddleware:
    """Counts requests by method and route, for `GET /local/stats` (benchmarks, operators).

    Plain ASGI rather than BaseHTTPMiddleware: it runs on every request, and needs no body."""

    def __init__(self, app: Any, counts: dict[str, int]):
        self.app = app
        self.counts = counts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        # Count when the response starts, before its body reaches the client: a client that reads
        # /local/stats right after a response must see that request counted.
        async def counted_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                key = f"{scope['method']} {getattr(scope.get('route'), 'path', scope['path'])}"
                self.counts[key] = self.counts.get(key, 0) + 1
            await send(message)

        await self.app(scope, receive, counted_send)


class AuthMiddleware(BaseHTTPMiddleware):
    """Every request needs `Authorization: Bearer <api_key>`."""

    def __init__(self, app: Any, api_key: str):
        super().__init__(app)
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: Callable) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.api_key):
            return error(401, "invalid or missing API key: send `Authorization: Bearer <key>` with the key the "
                              "local plane was started with (bt-dagster local serve --api-key, or BT_LOCAL_API_KEY)")
        return await call_next(request)


async def _store_error(request: Request, exc: Exception) -> Response:
    return error(getattr(exc, "status", 400), str(exc))


async def _query_error(request: Request, exc: Exception) -> Response:
    return error(400, f"invalid query: {exc}")


async def _not_found(request: Request, exc: Exception) -> Response:
    return error(404, f"no route {request.method} {request.url.path}: see the Braintrust REST API reference")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, f"{request.method} is not allowed on {request.url.path}")


async def _server_error(request: Request, exc: Exception) -> Response:
    return error(500, f"internal error in the local data plane: {type(exc).__name__}: {exc}")


EXCEPTION_HANDLERS: dict[Any, Callable] = {
    StoreError: _store_error, QueryError: _query_error, 404: _not_found, 405: _method_not_allowed,
    Exception: _server_error,
}
