"""Row routes: `POST /logs3`, and insert, fetch and feedback on `/v1/{dataset|project_logs|experiment}/{id}`.

The object kinds share one endpoint per operation; the route binds `kind` ("dataset",
"project_logs" or "experiment") as a path parameter.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..query import ParsedQuery
from ..store import BadInput
from .common import json_body, object_body, run, store_of, version_param


def _routing(kind: str, object_id: str) -> dict[str, Any]:
    return {f"{kind}_id": object_id} if kind in ("dataset", "experiment") else {"project_id": object_id, "log_id": "g"}


async def _require_object(request: Request, kind: str, object_id: str) -> None:
    """The dataset or experiment, or the project whose logs the path names, must exist (else a 404)."""
    await run(request, store_of(request).get_object, "project" if kind == "project_logs" else kind, object_id)


async def _listed(request: Request, what: str, field: str, need: str) -> tuple[str, str, list[Any]]:
    """The object kind and id the path names, and the list the body carries in `field`."""
    body = object_body(await json_body(request), what)
    items = body.get(field)
    if not isinstance(items, list):
        raise BadInput(f"{what} body needs `{field}`: {need}")
    return request.path_params["kind"], request.path_params["id"], items


async def insert(request: Request) -> Response:
    kind, object_id, events = await _listed(request, "insert", "events", "a list of row objects")
    rows = [{**object_body(e, "event"), **_routing(kind, object_id)} for e in events]
    await _require_object(request, kind, object_id)
    _, row_ids = await run(request, store_of(request).write_rows, rows)
    return JSONResponse({"row_ids": row_ids})


async def feedback(request: Request) -> Response:
    kind, object_id, items = await _listed(
        request, "feedback", "feedback", "a list of {id, scores?, expected?, comment?, metadata?, tags?}"
    )
    rows: list[dict[str, Any]] = []
    for item in items:
        item = object_body(item, "feedback item")
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
    await _require_object(request, kind, object_id)
    if rows:
        await run(request, store_of(request).write_rows, rows)
    return JSONResponse({"status": "success"})


async def fetch(request: Request) -> Response:
    kind = request.path_params["kind"]
    object_id = request.path_params["id"]
    if request.method == "GET":
        q = request.query_params
        body: dict[str, Any] = {k: q.get(k) for k in ("limit", "cursor", "version") if q.get(k) is not None}
    else:
        body = object_body(await json_body(request), "fetch")
    limit = body.get("limit")
    try:
        limit = int(limit) if limit is not None else None
    except (TypeError, ValueError) as exc:
        raise BadInput(f"limit must be an integer, got {limit!r}") from exc
    query = ParsedQuery(
        source=kind, object_ref=object_id,
        # project_logs fetch counts traces, like Braintrust
        shape="traces" if kind == "project_logs" else "spans", select=None, filter=None, sort=(),
        limit=limit, cursor=body.get("cursor") or None,
    )
    page = await run(request, store_of(request).query, query, version=version_param(body.get("version")))
    cursor = f',"cursor":{json.dumps(page.cursor)}' if page.cursor else ""
    content = b'{"events":[' + b",".join(page.rows) + b"]" + cursor.encode() + b"}"
    return Response(content, media_type="application/json")


async def logs3(request: Request) -> Response:
    body = object_body(await json_body(request), "logs3")
    rows = body.get("rows")
    if isinstance(rows, dict) and rows.get("type") == "logs3_overflow":
        raise BadInput("the local plane does not use overflow uploads: /version advertises no payload limit")
    if not isinstance(rows, list):
        raise BadInput("logs3 body needs `rows`: a list of row objects, and api_version 2")
    xact, _ = await run(request, store_of(request).write_rows, rows)
    return JSONResponse({"xact_id": str(xact)})


def _with(endpoint: Callable, params: dict[str, str]) -> Callable:
    """Bind fixed path parameters (the object kind) to a shared endpoint."""

    async def bound(request: Request) -> Response:
        request.path_params.update(params)
        return await endpoint(request)

    return bound


ROUTES = [Route("/logs3", logs3, methods=["POST"])]
for _kind in ("dataset", "project_logs", "experiment"):
    _prefix = f"/v1/{_kind}/{{id}}"
    _defaults = {"kind": _kind}
    ROUTES += [
        Route(f"{_prefix}/insert", _with(insert, _defaults), methods=["POST"]),
        Route(f"{_prefix}/fetch", _with(fetch, _defaults), methods=["GET", "POST"]),
        Route(f"{_prefix}/feedback", _with(feedback, _defaults), methods=["POST"]),
    ]
