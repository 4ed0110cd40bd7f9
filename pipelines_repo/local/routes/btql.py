"""`POST /btql`: a SQL, BTQL or JSON query, answered as JSON, JSON lines or Parquet."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..query import parse_query
from ..store import BadInput
from .common import json_body, object_body, run, store_of, version_param

BTQL_SCHEMA = {"type": "array", "items": {"type": "object", "additionalProperties": True}}


async def btql(request: Request) -> Response:
    body = object_body(await json_body(request), "btql")
    if "query" not in body:
        raise BadInput("btql body needs `query`: SQL text, BTQL text, or a JSON query object")
    fmt = body.get("fmt", "json")
    if fmt not in ("json", "jsonl", "parquet"):
        raise BadInput(f"unsupported fmt {fmt!r}: use json, jsonl or parquet")
    parsed = parse_query(body["query"], now=datetime.now(timezone.utc))
    page = await run(request, store_of(request).query, parsed, version=version_param(body.get("version")))
    headers = {"x-bt-cursor": page.cursor} if page.cursor else {}
    if fmt == "jsonl":
        return Response(b"".join(r + b"\n" for r in page.rows), media_type="application/x-ndjson", headers=headers)
    if fmt == "parquet":
        data = await run(request, to_parquet, page.rows)
        return Response(data, media_type="application/vnd.apache.parquet", headers=headers)
    tail = ',"schema":' + json.dumps(BTQL_SCHEMA) + (f',"cursor":{json.dumps(page.cursor)}' if page.cursor else "") + "}"
    return Response(b'{"data":[' + b",".join(page.rows) + b"]" + tail.encode(), media_type="application/json", headers=headers)


def to_parquet(rows: list[bytes]) -> bytes:
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


ROUTES = [Route("/btql", btql, methods=["POST"])]
