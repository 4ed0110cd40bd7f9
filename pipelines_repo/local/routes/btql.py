"""`POST /btql`: a SQL, BTQL or JSON query, answered as JSON, JSON lines or Parquet."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone

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
    now = datetime.now(timezone.utc)
    tz_offset = tz_offset_param(body.get("tz_offset"))
    query = body["query"] if tz_offset is None else local_days(body["query"], now, tz_offset)
    parsed = parse_query(query, now=now)
    audit_log = body.get("audit_log")
    if audit_log is not None and not isinstance(audit_log, bool):
        raise BadInput(f"audit_log must be true or false, got {audit_log!r}")
    version = version_param(body.get("version"))
    readers = request.app.state.read_workers
    if readers is not None:
        page = await readers.query(store_of(request), parsed, version=version, audit_log=bool(audit_log))
    else:
        page = await run(request, store_of(request).query, parsed, version=version, audit_log=bool(audit_log))
    headers = {"x-bt-cursor": page.cursor} if page.cursor else {}
    if fmt == "jsonl":
        return Response(b"".join(r + b"\n" for r in page.rows), media_type="application/x-ndjson", headers=headers)
    if fmt == "parquet":
        data = await run(request, to_parquet, page.rows)
        return Response(data, media_type="application/vnd.apache.parquet", headers=headers)
    tail = ',"schema":' + json.dumps(BTQL_SCHEMA) + (f',"cursor":{json.dumps(page.cursor)}' if page.cursor else "") + "}"
    return Response(b'{"data":[' + b",".join(page.rows) + b"]" + tail.encode(), media_type="application/json", headers=headers)


def tz_offset_param(value: object) -> int | None:
    """``tz_offset``: minutes behind UTC, as JavaScript's ``getTimezoneOffset`` (480 = US Pacific)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or abs(value) > 1440:
        raise BadInput(f"tz_offset must be whole minutes between -1440 and 1440 (480 = US Pacific), got {value!r}")
    return int(value)


_CURRENT_DATE = re.compile(r"\bcurrent_date\b(\s*\(\s*\))?", re.IGNORECASE)
_QUOTED = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`)")


def local_days(query: object, now: datetime, tz_offset: int) -> object:
    """The query with ``current_date`` meaning local midnight at ``tz_offset``: each unquoted
    ``current_date`` in SQL/BTQL text (and in JSON ``{"btql": ...}`` leaves) becomes
    ``(now() - interval <seconds since local midnight> second)``, so it is still a time."""
    local = now - timedelta(minutes=tz_offset)
    since = (local - local.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
    replacement = f"(now() - interval {since:.6f} second)"

    def text(value: str) -> str:
        parts = _QUOTED.split(value)  # odd items are quoted literals and identifiers: left alone
        return "".join(p if i % 2 else _CURRENT_DATE.sub(replacement, p) for i, p in enumerate(parts))

    def walk(node: object) -> object:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, dict):
            return {k: (text(v) if k == "btql" and isinstance(v, str) else walk(v) if isinstance(v, (dict, list)) else v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(query)


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
