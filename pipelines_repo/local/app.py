"""The local data plane's HTTP API: the subset of Braintrust's REST API the SDK, bt and our client use.

Routes, shapes and status codes follow Braintrust (docs/ARCHITECTURE.md, shared/reference). Every
error is JSON with a `message` that names the cause and the fix.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .query import ParsedQuery, QueryError, parse_query
from .store import ORG_ID, ORG_NAME, BadInput, LocalStore, StoreError

BTQL_SCHEMA = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


async def _json_body(request: Request) -> Any:
    """Parse the body as JSON whatever the Content-Type (the SDK posts /logs3 without one)."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadInput(f"request body is not valid JSON ({exc}): send a JSON object") from exc


def _object_body(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadInput(f"{what} body must be a JSON object")
    return body


@dataclass(frozen=True)
class Faults:
    """Fault injection for resilience tests: a fraction of data requests fail or stall."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 0.5
    retry_after: float = 0.05
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> "Faults":
        """`429=0.1,500=0.05,slow=0.1,slow_seconds=0.3,seed=7` -> Faults."""
        names = {"429": "rate_429", "500": "rate_500", "slow": "rate_slow"}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            values[names.get(key.strip(), key.strip())] = float(value)
        fields = set(cls.__dataclass_fields__)
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}: use 429=, 500=, slow=, slow_seconds=, retry_after=, seed=")
        if "seed" in values:
            values["seed"] = int(values["seed"])
        return cls(**values)  # type: ignore[arg-type]


class _FaultMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, faults: Faults):
        super().__init__(app)
        self.faults = faults
        self.random = random.Random(faults.seed)

    async def dispatch(self, request: Request, call_next: Callable) -> Response:
        path = request.url.path
        if not (path.startswith("/v1/") or path in ("/btql", "/logs3")):
            return await call_next(request)
        roll = self.random.random()
        f = self.faults
        if roll < f.rate_429:
            return _error(429, "too many requests (injected fault): retry after the Retry-After delay",
                          headers={"Retry-After": str(f.retry_after)})
        if roll < f.rate_429 + f.rate_slow:
            await asyncio.sleep(f.slow_seconds)
        response = await call_next(request)
        # A 500 after the work is done: the client cannot tell whether the write landed.
        if self.random.random() < f.rate_500:
            return _error(500, "internal error (injected fault): retry the request")
        return response


class _CountingMiddleware:
    """Counts requests by method and route, for `GET /local/stats` (benchmarks, operators).

    Plain ASGI rather than BaseHTTPMiddleware: it runs on every request, and needs no body."""

    def __init__(self, app: Any, counts: dict[str, int]):
        self.app = app
        self.counts = counts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            key = f"{scope['method']} {getattr(scope.get('route'), 'path', scope['path'])}"
            self.counts[key] = self.counts.get(key, 0) + 1


class _AuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app: Any, api_key: str):
        super().__init__(app)
        self.api_key = api_key

    async def dispatch(self, request: Request, call_next: Callable) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.api_key):
            return _error(401, "invalid or missing API key: send `Authorization: Bearer <key>` with the key the "
                               "local plane was started with (bt-dagster local serve --api-key, or BT_LOCAL_API_KEY)")
        return await call_next(request)


def create_app(
    store: LocalStore, *, api_key: str | None = None, faults: Faults | None = None, offload: bool = True
) -> Starlette:
    """Build the ASGI app. With `api_key`, every request needs that Bearer key.

    `offload` runs store calls in a worker thread so a served plane keeps answering while one
    request reads or writes; the in-process transport turns it off (its loop serves one caller).
    """

    def now() -> datetime:
        return datetime.now(timezone.utc)

    async def run(fn: Callable, *args: Any, **kwargs: Any) -> Any:
        if offload:
            return await run_in_threadpool(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # -- server info ---------------------------------------------------------------------
    async def login(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"org_info": [{"id": ORG_ID, "name": ORG_NAME, "api_url": base, "proxy_url": base}]})

    async def version(request: Request) -> Response:
        return JSONResponse({"logs3_payload_max_bytes": None, "local": True})

    async def ping(request: Request) -> Response:
        return JSONResponse({})

    async def hello(request: Request) -> Response:
        return PlainTextResponse("Hello, World!")

    counts: dict[str, int] = {}

    async def local_stats(request: Request) -> Response:
        """Requests served since start, by route (not part of Braintrust's API)."""
        served = {k: v for k, v in counts.items() if not k.endswith(" /local/stats")}
        return JSONResponse({"requests": served, "total": sum(served.values())})

    # -- projects ------------------------------------------------------------------------
    async def project_create(request: Request) -> Response:
        body = _object_body(await _json_body(request), "project")
        return JSONResponse(await run(store.create_project, body.get("name"), body.get("description")))

    def _list_args(request: Request) -> dict[str, Any]:
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

    async def project_list(request: Request) -> Response:
        args = _list_args(request)
        objects = await run(store.list_objects, "project", name=request.query_params.get("project_name"), **args)
        return JSONResponse({"objects": objects})

    async def project_get(request: Request) -> Response:
        return JSONResponse(await run(store.get_object, "project", request.path_params["id"]))

    # -- datasets ------------------------------------------------------------------------
    async def dataset_create(request: Request) -> Response:
        body = _object_body(await _json_body(request), "dataset")
        if not body.get("project_id"):
            raise BadInput("project_id is required to create a dataset: create or look up the project first")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadInput("dataset metadata must be a JSON object")
        result = await run(
            store.create_dataset, body["project_id"], body.get("name"), body.get("description"), metadata, body.get("tags")
        )
        return JSONResponse(result)

    async def dataset_list(request: Request) -> Response:
        q = request.query_params
        objects = await run(
            store.list_objects, "dataset", name=q.get("dataset_name"), project_id=q.get("project_id"),
            project_name=q.get("project_name"), **_list_args(request),
        )
        return JSONResponse({"objects": objects})

    async def dataset_get(request: Request) -> Response:
        return JSONResponse(await run(store.get_object, "dataset", request.path_params["id"]))

    async def dataset_patch(request: Request) -> Response:
        body = _object_body(await _json_body(request), "dataset patch")
        return JSONResponse(await run(store.patch_dataset, request.path_params["id"], body))

    async def dataset_delete(request: Request) -> Response:
        return JSONResponse(await run(store.delete_dataset, request.path_params["id"]))

    async def dataset_summarize(request: Request) -> Response:
        dataset = await run(store.get_object, "dataset", request.path_params["id"])
        project = await run(store.get_object, "project", dataset["project_id"])
        base = str(request.base_url).rstrip("/")
        project_url = f"{base}/app/{ORG_NAME}/p/{project['name']}"
        result: dict[str, Any] = {
            "project_name": project["name"], "dataset_name": dataset["name"],
            "project_url": project_url, "dataset_url": f"{project_url}/datasets/{dataset['name']}",
        }
        if request.query_params.get("summarize_data", "true").lower() != "false":
            result["data_summary"] = {"total_records": await run(store.count_rows, "dataset", dataset["id"])}
        return JSONResponse(result)

    # -- rows ----------------------------------------------------------------------------
    def _routing(kind: str, object_id: str) -> dict[str, Any]:
        return {"dataset_id": object_id} if kind == "dataset" else {"project_id": object_id, "log_id": "g"}

    async def _require_object(kind: str, object_id: str) -> None:
        """The dataset, or the project whose logs the path names, must exist (else a 404)."""
        await run(store.get_object, "dataset" if kind == "dataset" else "project", object_id)

    async def insert(request: Request) -> Response:
        kind = request.path_params["kind"]
        object_id = request.path_params["id"]
        body = _object_body(await _json_body(request), "insert")
        events = body.get("events")
        if not isinstance(events, list):
            raise BadInput("insert body needs `events`: a list of row objects")
        rows = [{**_object_body(e, "event"), **_routing(kind, object_id)} for e in events]
        await _require_object(kind, object_id)
        _, row_ids = await run(store.write_rows, rows)
        return JSONResponse({"row_ids": row_ids})

    async def feedback(request: Request) -> Response:
        kind = request.path_params["kind"]
        object_id = request.path_params["id"]
        body = _object_body(await _json_body(request), "feedback")
        items = body.get("feedback")
        if not isinstance(items, list):
            raise BadInput("feedback body needs `feedback`: a list of {id, scores?, expected?, comment?, metadata?, tags?}")
        rows: list[dict[str, Any]] = []
        for item in items:
            item = _object_body(item, "feedback item")
            if not item.get("id"):
                raise BadInput("every feedback item needs the `id` of the row it is about")
            merge = {k: item[k] for k in ("scores", "expected", "metadata", "tags") if k in item}
            if merge:
                rows.append({"id": item["id"], **merge, "_is_merge": True, **_routing(kind, object_id)})
            if item.get("comment"):
                rows.append({
                    "id": str(uuid.uuid4()), "origin": {"id": item["id"]}, "comment": {"text": item["comment"]},
                    "_audit_source": item.get("source", "api"), **_routing(kind, object_id),
                })
        await _require_object(kind, object_id)
        if rows:
            await run(store.write_rows, rows)
        return JSONResponse({"status": "success"})

    async def fetch(request: Request) -> Response:
        kind = request.path_params["kind"]
        object_id = request.path_params["id"]
        if request.method == "GET":
            q = request.query_params
            body: dict[str, Any] = {k: q.get(k) for k in ("limit", "cursor", "version") if q.get(k) is not None}
        else:
            body = _object_body(await _json_body(request), "fetch")
        limit = body.get("limit")
        try:
            limit = int(limit) if limit is not None else None
        except (TypeError, ValueError) as exc:
            raise BadInput(f"limit must be an integer, got {limit!r}") from exc
        query = ParsedQuery(
            source="dataset" if kind == "dataset" else "project_logs", object_ref=object_id,
            # project_logs fetch counts traces, like Braintrust
            shape="spans" if kind == "dataset" else "traces", select=None, filter=None, sort=(),
            limit=limit, cursor=body.get("cursor") or None,
        )
        page = await run(store.query, query, version=_version(body.get("version")))
        cursor = f',"cursor":{json.dumps(page.cursor)}' if page.cursor else ""
        body = b'{"events":[' + b",".join(page.rows) + b"]" + cursor.encode() + b"}"
        return Response(body, media_type="application/json")

    async def logs3(request: Request) -> Response:
        body = _object_body(await _json_body(request), "logs3")
        rows = body.get("rows")
        if isinstance(rows, dict) and rows.get("type") == "logs3_overflow":
            raise BadInput("the local plane does not use overflow uploads: /version advertises no payload limit")
        if not isinstance(rows, list):
            raise BadInput("logs3 body needs `rows`: a list of row objects, and api_version 2")
        xact, _ = await run(store.write_rows, rows)
        return JSONResponse({"xact_id": str(xact)})

    async def btql(request: Request) -> Response:
        body = _object_body(await _json_body(request), "btql")
        if "query" not in body:
            raise BadInput("btql body needs `query`: SQL text, BTQL text, or a JSON query object")
        fmt = body.get("fmt", "json")
        if fmt not in ("json", "jsonl", "parquet"):
            raise BadInput(f"unsupported fmt {fmt!r}: use json, jsonl or parquet")
        parsed = parse_query(body["query"], now=now())
        page = await run(store.query, parsed, version=_version(body.get("version")))
        headers = {"x-bt-cursor": page.cursor} if page.cursor else {}
        if fmt == "jsonl":
            return Response(b"".join(r + b"\n" for r in page.rows), media_type="application/x-ndjson", headers=headers)
        if fmt == "parquet":
            data = await run(_to_parquet, page.rows)
            return Response(data, media_type="application/vnd.apache.parquet", headers=headers)
        tail = ',"schema":' + json.dumps(BTQL_SCHEMA) + (f',"cursor":{json.dumps(page.cursor)}' if page.cursor else "") + "}"
        return Response(b'{"data":[' + b",".join(page.rows) + b"]" + tail.encode(), media_type="application/json", headers=headers)

    def _version(value: Any) -> int | None:
        if value in (None, ""):
            return None
        try:
            parsed = int(str(value))
        except ValueError as exc:
            raise BadInput(f"version must be a decimal transaction id (_xact_id), got {value!r}") from exc
        if parsed < 0:
            raise BadInput("version must be a non-negative transaction id")
        return parsed

    # -- errors --------------------------------------------------------------------------
    async def store_error(request: Request, exc: Exception) -> Response:
        return _error(getattr(exc, "status", 400), str(exc))

    async def query_error(request: Request, exc: Exception) -> Response:
        return _error(400, f"invalid query: {exc}")

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no route {request.method} {request.url.path}: see the Braintrust REST API reference")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}")

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error(500, f"internal error in the local data plane: {type(exc).__name__}: {exc}")

    routes = [
        Route("/api/apikey/login", login, methods=["POST"]),
        Route("/version", version, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/v1", hello, methods=["GET"]),
        Route("/local/stats", local_stats, methods=["GET"]),
        Route("/v1/project", project_create, methods=["POST"]),
        Route("/v1/project", project_list, methods=["GET"]),
        Route("/v1/project/{id}", project_get, methods=["GET"]),
        Route("/v1/dataset", dataset_create, methods=["POST"]),
        Route("/v1/dataset", dataset_list, methods=["GET"]),
        Route("/v1/dataset/{id}", dataset_get, methods=["GET"]),
        Route("/v1/dataset/{id}", dataset_patch, methods=["PATCH"]),
        Route("/v1/dataset/{id}", dataset_delete, methods=["DELETE"]),
        Route("/v1/dataset/{id}/summarize", dataset_summarize, methods=["GET"]),
        Route("/logs3", logs3, methods=["POST"]),
        Route("/btql", btql, methods=["POST"]),
    ]
    for kind in ("dataset", "project_logs"):
        prefix = f"/v1/{kind}/{{id}}"
        defaults = {"kind": kind}
        routes += [
            Route(f"{prefix}/insert", _with(insert, defaults), methods=["POST"]),
            Route(f"{prefix}/fetch", _with(fetch, defaults), methods=["GET", "POST"]),
            Route(f"{prefix}/feedback", _with(feedback, defaults), methods=["POST"]),
        ]
    middleware = [Middleware(_CountingMiddleware, counts=counts)]
    if api_key:
        middleware.append(Middleware(_AuthMiddleware, api_key=api_key))
    if faults is not None:
        middleware.append(Middleware(_FaultMiddleware, faults=faults))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            StoreError: store_error, QueryError: query_error, 404: not_found, 405: method_not_allowed,
            Exception: server_error,
        },
    )
    app.state.store = store
    return app


def _with(endpoint: Callable, params: dict[str, str]) -> Callable:
    """Bind fixed path parameters (the object kind) to a shared endpoint."""

    async def bound(request: Request) -> Response:
        request.path_params.update(params)
        return await endpoint(request)

    return bound


def _to_parquet(rows: list[bytes]) -> bytes:
    """Rows -> Parquet: scalar system fields keep their type; nested fields are JSON text columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    decoded = [json.loads(r) for r in rows]
    names: list[str] = []
    for row in decoded:
        for key in row:
            if key not in names:
                names.append(key)
    columns = {}
    for name in names:
        values = [row.get(name) for row in decoded]
        if all(v is None or isinstance(v, bool) for v in values) and any(v is not None for v in values):
            columns[name] = pa.array(values, type=pa.bool_())
        elif all(v is None or isinstance(v, str) for v in values):
            columns[name] = pa.array(values, type=pa.string())
        else:
            columns[name] = pa.array([None if v is None else json.dumps(v) for v in values], type=pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns) if columns else pa.table({"id": pa.array([], type=pa.string())}), buffer)
    return buffer.getvalue()
