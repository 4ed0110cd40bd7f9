"""OTLP/HTTP trace ingest: `POST /otel/v1/traces` (docs/BT_COMPAT.md §A.9).

Auth is the app's AuthMiddleware (401 without the Bearer key). Decoding, mapping and the write
run in one store call (a worker thread on a served plane): they are CPU work on the request body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..otlp import ingest
from ..otlp.parent import HEADER
from .common import error, run, store_of


async def traces(request: Request) -> Response:
    body = await request.body()
    result = await run(
        request, ingest, store_of(request), body,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"),
        parent=request.headers.get(HEADER),
    )
    return Response(result.body, status_code=200, media_type=result.media_type)


async def other_signals(request: Request) -> Response:
    return error(404, f"{request.url.path}: the local plane ingests OTLP traces only, at POST /otel/v1/traces")


ROUTES = [
    Route("/otel/v1/traces", traces, methods=["POST"]),
    Route("/otel/v1/{signal:str}", other_signals, methods=["POST"]),
]
