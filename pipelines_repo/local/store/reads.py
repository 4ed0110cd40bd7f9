"""Reads: `/btql` and fetch queries at head or a pinned version, keyset paging with cursors, row counts.

A read pinned at version V sees, per id, the newest version with `xact_id <= V`. Rows come back
as UTF-8 JSON assembled by SQLite, ready to join into a response body.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..query import ParsedQuery, SelectItem, SortItem
from .db import ORG_ID, BadInput, NotFound, dumps, encode_string, key_bound
from .objects import OBJECT_COLS, Objects, object_dict

MAX_PAGE = 1000

_SORT_COLUMNS = {"_pagination_key": "r.pagination_key", "_xact_id": "r.xact_id", "created": "r.created", "id": "r.id"}
_COLUMN_FIELDS = ("id", "_xact_id", "created", "_pagination_key", "root_span_id", "span_id", "is_root")


@dataclass
class QueryPage:
    rows: list[bytes]  # each row as UTF-8 JSON, ready to join into a response body
    cursor: str | None


def encode_cursor(payload: dict[str, Any]) -> str:
    """A page cursor: the paging position as URL-safe base64 JSON."""
    return base64.urlsafe_b64encode(dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The paging position in a cursor from `encode_cursor` (BadInput if it is not one)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError
        return payload
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the caller's bad cursor
        raise BadInput(f"invalid cursor {cursor[:40]!r}: pass the cursor from the previous page unchanged") from exc


class Reads(Objects):
    """`query` (one page of rows) and `count_rows`."""

    def count_rows(self, kind: str, object_id: str) -> int:
        """Live rows of a dataset (or a project's logs) at head."""
        pk = self._object_pk(kind, object_id)
        return self._conn().execute(
            "SELECT COUNT(*) FROM rows r WHERE r.obj=? AND r.head=1 AND r.deleted=0", (pk,)
        ).fetchone()[0]

    def resolve_source(self, query: ParsedQuery) -> tuple[int, dict[str, Any]]:
        """The object a query reads, and the routing fields every returned row carries."""
        if query.source == "project_logs":
            kind = "project"
        elif query.source in ("dataset", "experiment"):
            kind = query.source
        else:
            raise BadInput(f"{query.source}() is not supported by the local data plane: query project_logs(), dataset() or experiment()")
        ref = query.object_ref
        row = self._object_row(kind, ref)
        if row is None:
            named = self._conn().execute(
                f"SELECT {OBJECT_COLS} FROM objects WHERE kind=? AND name=? AND deleted_at IS NULL", (kind, ref)
            ).fetchall()
            if len(named) != 1:
                raise NotFound(f"{kind} {ref!r} not found: pass the {kind} id (or a unique name)")
            row = named[0]
        obj = object_dict(row)
        if kind == "project":
            routing = {"org_id": ORG_ID, "project_id": obj["id"], "log_id": "g"}
        else:
            routing = {"project_id": obj["project_id"], f"{kind}_id": obj["id"]}
        return row[0], routing

    def query(self, query: ParsedQuery, *, version: int | None = None, audit_log: bool = False) -> QueryPage:
        """Run a parsed `/btql` query: one page of JSON-encoded rows and the next cursor.

        ``audit_log`` adds each row's ``audit_data`` (docs/BT_COMPAT.md §A.10)."""
        page = self._query(query, version=version)
        if audit_log and page.rows:
            obj, _ = self.resolve_source(query)
            page = QueryPage(_with_audit(self._conn(), obj, page.rows, version), page.cursor)
        return page

    def _query(self, query: ParsedQuery, *, version: int | None = None) -> QueryPage:
        obj, routing = self.resolve_source(query)
        limit = MAX_PAGE if query.limit is None else max(0, min(int(query.limit), MAX_PAGE))
        if limit == 0:
            return QueryPage([], None)
        visible, visible_params = _visible(obj, version)
        conds, params = [visible], list(visible_params)
        if query.filter is not None:
            conds.append(f"({query.filter.sql})")
            params.extend(query.filter.params)
        sort = query.sort[0] if query.sort else SortItem(field="_pagination_key", dir="desc")
        if sort.field not in _SORT_COLUMNS:
            raise BadInput(f"cannot sort by {sort.field!r}: sort by _pagination_key, _xact_id, created or id")
        descending = sort.dir.lower() == "desc"
        routing_json = ",".join(f"{encode_string(k)}:{encode_string(v)}" for k, v in routing.items())
        columns, select_params = _projection(query.select, routing_json)
        conn = self._conn()
        if query.shape in ("traces", "summary"):
            return _query_traces(conn, obj, version, conds, params, query, limit, descending, columns, select_params)
        col = _SORT_COLUMNS[sort.field]
        op = "<" if descending else ">"
        source = "rows r"
        lower, upper = query.filter.created_range if query.filter is not None else (None, None)
        cur = decode_cursor(query.cursor) if query.cursor else None
        if col == "r.pagination_key" and (lower or upper):
            # The created range as a key range: each page is one seek in the key index. The
            # cursor is folded into the bound on its side, because SQLite seeks on one bound per
            # side and filters by the other: with both, every page scanned the window from its
            # edge down to the cursor (pages grew slower with their offset).
            low = (key_bound(lower), ">=") if lower else None
            high = (key_bound(upper) + "~", "<") if upper else None  # past every key created at `upper`
            if cur is not None:
                at_cursor = (cur.get("k"), op)
                if descending:
                    high = at_cursor if high is None or at_cursor[0] <= high[0] else high
                else:
                    low = at_cursor if low is None or at_cursor[0] >= low[0] else low
                cur = None
            for bound in (low, high):
                if bound is not None:
                    conds.append(f"r.pagination_key {bound[1]} ?")
                    params.append(bound[0])
            if version is None:
                source = "rows r INDEXED BY rows_head_page"
        if cur is not None:
            if col == "r.pagination_key":
                conds.append(f"r.pagination_key {op} ?")
                params.append(cur.get("k"))
            else:
                conds.append(f"({col}, r.pagination_key) {op} (?, ?)")
                params.extend([cur.get("v"), cur.get("k")])
        direction = "DESC" if descending else "ASC"
        # A keyed filter (rows by id or root span id) sorts what it finds: `+` keeps SQLite from
        # walking the sort column's index over every row of the object instead of the key's index.
        lead = "+" if query.filter is not None and query.filter.keyed and source == "rows r" else ""
        order = f"{lead}{col} {direction}" + ("" if col == "r.pagination_key" else f", r.pagination_key {direction}")
        sql = f"SELECT {columns} FROM {source} WHERE {' AND '.join(conds)} ORDER BY {order} LIMIT {limit}"
        rows, last = [], None
        for rec in conn.execute(sql, select_params + params):
            rows.append(_render(rec, query.select))
            last = rec
        cursor = None
        if len(rows) == limit and last is not None:
            sort_value = {"r.pagination_key": last[3], "r.xact_id": last[1], "r.created": last[2], "r.id": last[0]}[col]
            cursor = encode_cursor({"k": last[3], "v": sort_value})
        return QueryPage(rows, cursor)


def _query_traces(
    conn: sqlite3.Connection, obj: int, version: int | None, conds: list[str], params: list[Any], query: ParsedQuery,
    limit: int, descending: bool, columns: str, select_params: list[Any],
) -> QueryPage:
    """A page of whole traces (or their root spans, for `summary`), paged by each trace's first or last key."""
    agg = "MAX" if descending else "MIN"
    op = "<" if descending else ">"
    having, having_params = "", []
    if query.cursor:
        having = f" HAVING k {op} ?"
        having_params = [decode_cursor(query.cursor).get("k")]
    roots = conn.execute(
        f"SELECT r.root_span_id, {agg}(r.pagination_key) AS k FROM rows r WHERE {' AND '.join(conds)}"
        f" GROUP BY r.root_span_id{having} ORDER BY k {'DESC' if descending else 'ASC'} LIMIT {limit}",
        params + having_params,
    ).fetchall()
    if not roots:
        return QueryPage([], None)
    visible, visible_params = _visible(obj, version)
    order = {root: i for i, (root, _) in enumerate(roots)}
    spans_sql = (
        f"SELECT {columns} FROM rows r WHERE {visible} AND r.root_span_id IN ({','.join('?' * len(roots))})"
        + (" AND r.is_root = 1" if query.shape == "summary" else "")
        + " ORDER BY r.pagination_key"
    )
    found = conn.execute(spans_sql, select_params + list(visible_params) + [root for root, _ in roots]).fetchall()
    found.sort(key=lambda rec: order[rec[4]])
    rows = [_render(rec, query.select) for rec in found]
    cursor = encode_cursor({"k": roots[-1][1]}) if len(roots) == limit else None
    return QueryPage(rows, cursor)


def _xact_time(xact: int) -> str:
    """The second a local `_xact_id` was stamped at (docs/BT_COMPAT.md §A.2), as ISO UTC text."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp((int(xact) >> 16) & 0xFFFFFFFF, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_audit(conn: sqlite3.Connection, obj: int, rows: list[bytes], version: int | None) -> list[bytes]:
    """Each row with ``audit_data``: one entry per stored version of its id, oldest first (up to
    ``version`` when pinned): ``{"_xact_id", "created", "action"}``, action ``upsert`` or ``delete``.
    The store keeps each version's resulting row, not the request, so a merge reads as an upsert."""
    ids = [json.loads(row).get("id") for row in rows]
    history: dict[str, list[dict[str, Any]]] = {}
    wanted = sorted({i for i in ids if isinstance(i, str)})
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        sql = (f"SELECT id, xact_id, deleted FROM rows WHERE obj = ? AND id IN ({','.join('?' * len(chunk))})"
               + (" AND xact_id <= ?" if version is not None else "") + " ORDER BY seq")
        params = [obj, *chunk] + ([int(version)] if version is not None else [])
        for rid, xact, deleted in conn.execute(sql, params):
            history.setdefault(rid, []).append(
                {"_xact_id": str(xact), "created": _xact_time(xact), "action": "delete" if deleted else "upsert"})
    out = []
    for rid, row in zip(ids, rows):
        audit = dumps(history.get(rid, [])).encode()
        out.append(row[:-1] + (b',"audit_data":' if len(row) > 2 else b'"audit_data":') + audit + b"}")
    return out


def _visible(obj: int, version: int | None) -> tuple[str, list[Any]]:
    """SQL selecting the rows visible at head, or as of a pinned version."""
    if version is None:
        return f"r.obj = {int(obj)} AND r.head = 1 AND r.deleted = 0", []
    return (
        f"r.obj = {int(obj)} AND r.xact_id <= ? AND r.deleted = 0 AND r.seq = "
        "(SELECT MAX(r2.seq) FROM rows r2 WHERE r2.obj = r.obj AND r2.id = r.id AND r2.xact_id <= ?)",
        [int(version), int(version)],
    )


def _json_path(path: tuple[str, ...]) -> str:
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append('."' + str(part).replace('"', '\\"') + '"')
    return "".join(parts)


# Every selected record starts with these columns (the cursor and trace grouping read them).
_KEY_COLUMNS = "r.id, r.xact_id, r.created, r.pagination_key, r.root_span_id"

# A whole row as JSON, assembled by SQLite: system columns, then the routing fields (a `?`), then
# the stored `data` object spliced in without re-parsing it. Cast to a BLOB so Python receives the
# UTF-8 bytes the response is made of, without decoding them into a str and encoding them back.
_STAR_JSON = (
    """CAST('{"id":' || json_quote(r.id) || ',"_xact_id":"' || r.xact_id || '","created":"' || r.created"""
    """ || '","_pagination_key":"' || r.pagination_key || '","root_span_id":' || json_quote(r.root_span_id)"""
    """ || ',"span_id":' || json_quote(r.span_id) || ',"is_root":' || CASE WHEN r.is_root THEN 'true' ELSE 'false' END"""
    """ || ',' || ? || CASE WHEN r.data = '{}' THEN '}' ELSE ',' || substr(r.data, 2) END AS BLOB)"""
)


def _projection(select: tuple[SelectItem, ...] | None, routing_json: str) -> tuple[str, list[Any]]:
    """The SELECT list for a query and its parameters (they bind before the WHERE clause's)."""
    if select is None:
        return f"{_KEY_COLUMNS}, {_STAR_JSON}", [routing_json]
    exprs = [
        f"r.data -> '{_json_path(item.path).replace(chr(39), chr(39) * 2)}'"
        for item in select
        if not (len(item.path) == 1 and item.path[0] in _COLUMN_FIELDS)
    ]
    columns = f"{_KEY_COLUMNS}, r.span_id, r.is_root" + "".join(f", {e}" for e in exprs)
    return columns, []


def _render(rec: tuple, select: tuple[SelectItem, ...] | None) -> bytes:
    """One record of a `_projection` query as row JSON."""
    if select is None:
        return rec[5]
    rid, xact, created, pkey, root, span, is_root = rec[:7]
    columns = {
        "id": encode_string(rid), "_xact_id": f'"{xact}"', "created": f'"{created}"', "_pagination_key": f'"{pkey}"',
        "root_span_id": encode_string(root) if root is not None else "null",
        "span_id": encode_string(span) if span is not None else "null", "is_root": "true" if is_root else "false",
    }
    parts, extra = [], 7
    for item in select:
        if len(item.path) == 1 and item.path[0] in _COLUMN_FIELDS:
            value = columns[item.path[0]]
        else:
            value = rec[extra] if rec[extra] is not None else "null"
            extra += 1
        parts.append(f"{encode_string(item.alias)}:{value}")
    return ("{" + ",".join(parts) + "}").encode()
