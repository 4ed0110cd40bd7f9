"""Server-info routes: SDK login, `/version`, `/ping`, `/v1`, and the plane's own `/local/stats`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..store import ORG_ID, ORG_NAME


async def login(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return JSONResponse({"org_info": [{"id": ORG_ID, "name": ORG_NAME, "api_url": base, "proxy_url": base}]})


async def version(request: Request) -> Response:
    return JSONResponse({"logs3_payload_max_bytes": None, "local": True})


async def ping(request: Request) -> Response:
    return JSONResponse({})


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, World!")


async def local_stats(request: Request) -> Response:
    """Requests served since start, by route (not part of Braintrust's API)."""
    counts: dict[str, int] = request.app.state.request_counts
    served = {k: v for k, v in counts.items() if not k.endswith(" /local/stats")}
    return JSONResponse({"requests": served, "total": sum(served.values())})


ROUTES = [
    Route("/api/apikey/login", login, methods=["POST"]),
    Route("/version", version, methods=["GET"]),
    Route("/ping", ping, methods=["GET"]),
    Route("/v1", hello, methods=["GET"]),
    Route("/local/stats", local_stats, methods=["GET"]),
]
