"""SQLite storage for the local data plane, with Braintrust's row semantics.

Every write request gets one `_xact_id`. Rows are versioned: a write appends a version of each
touched row and clears `head` on the one it supersedes, so a read pinned at version V sees, per
id, the newest version with `xact_id <= V`. See docs/ARCHITECTURE.md for the schema.

The file is opened in WAL mode with a busy timeout, so the Dagster webserver, daemon, run workers
and a served plane can share it. Each thread has its own connection.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .merge import apply_array_deletes, merge_row
from .query import ParsedQuery, SelectItem, SortItem
from .xact import next_xact_id

ORG_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "bt-dagster/local-org"))
ORG_NAME = "local"
MAX_PAGE = 1000

_encode = json.encoder.encode_basestring  # C-accelerated JSON string encoder
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# Fields that live in columns or only route a row; everything else is the row's JSON `data`.
_SYSTEM_FIELDS = frozenset(
    {
        "id", "_xact_id", "created", "_pagination_key", "root_span_id", "span_id", "is_root",
        "project_id", "dataset_id", "experiment_id", "log_id", "org_id", "prompt_session_id",
        "_is_merge", "_merge_paths", "_array_delete", "_object_delete", "_parent_id",
        "_audit_source", "_audit_metadata",
    }
)
_SORT_COLUMNS = {"_pagination_key": "r.pagination_key", "_xact_id": "r.xact_id", "created": "r.created", "id": "r.id"}
_COLUMN_FIELDS = ("id", "_xact_id", "created", "_pagination_key", "root_span_id", "span_id", "is_root")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  pk INTEGER PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL UNIQUE, project_id TEXT,
  name TEXT NOT NULL, description TEXT, metadata TEXT, tags TEXT, created TEXT NOT NULL, deleted_at TEXT);
CREATE INDEX IF NOT EXISTS objects_by_name ON objects(kind, project_id, name);
CREATE TABLE IF NOT EXISTS rows (
  seq INTEGER PRIMARY KEY, obj INTEGER NOT NULL, id TEXT NOT NULL, xact_id INTEGER NOT NULL,
  head INTEGER NOT NULL, deleted INTEGER NOT NULL, created TEXT NOT NULL, root_span_id TEXT,
  span_id TEXT, is_root INTEGER NOT NULL, pagination_key TEXT NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rows_head_id ON rows(obj, id) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_page ON rows(obj, pagination_key) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_created ON rows(obj, created) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_root ON rows(obj, root_span_id) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_history ON rows(obj, id, xact_id);
CREATE INDEX IF NOT EXISTS rows_by_xact ON rows(obj, xact_id);
CREATE TABLE IF NOT EXISTS orphan_comments (obj INTEGER NOT NULL, target_id TEXT NOT NULL, entry TEXT NOT NULL);
"""


class StoreError(Exception):
    """Base class; `status` is the HTTP status the app answers with."""

    status = 400


class NotFound(StoreError):
    status = 404


class BadInput(StoreError):
    status = 400


@dataclass
class QueryPage:
    rows: list[bytes]  # each row as UTF-8 JSON, ready to join into a response body
    cursor: str | None


@dataclass
class _Version:
    id: str
    created: str
    root_span_id: str | None
    span_id: str | None
    is_root: bool
    pagination_key: str
    data: dict[str, Any]
    deleted: bool = False
    supersedes: int | None = None  # for a head read from the file: its `seq`


def canonical_time(value: Any) -> str | None:
    """ISO-8601 text -> canonical UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (text order = time order)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    else:
        text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise BadInput(f"invalid timestamp {value!r}: use ISO-8601, e.g. 2026-01-31T12:00:00Z") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def pagination_key(created: str, xact: int, counter: int) -> str:
    """`_pagination_key`: `p` + the row's `created` digits + its first write's xact id and position.

    Time-ordered and unique. Leading with `created` makes a `created` range a key range, so a
    filtered time window pages through one index in key order, however wide the window is.
    """
    return f"p{created.translate(_NON_DIGITS)}{xact:019d}{counter:06d}"


def _key_bound(created: str) -> str:
    """The `_pagination_key` prefix of rows created at `created` (canonical text)."""
    return "p" + created.translate(_NON_DIGITS)


_NON_DIGITS = str.maketrans("", "", "-T:.Z")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(_dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(payload, dict):
            raise ValueError
        return payload
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the caller's bad cursor
        raise BadInput(f"invalid cursor {cursor[:40]!r}: pass the cursor from the previous page unchanged") from exc


class LocalStore:
    """Projects, datasets and versioned rows in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(_SCHEMA)

    # -- connections -------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA cache_size=-65536")
            # Reads share the OS page cache instead of warming a private cache per connection
            # (the app serves requests from a thread pool, one connection per thread).
            conn.execute("PRAGMA mmap_size=1073741824")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- projects and datasets ---------------------------------------------------------------
    def _object_dict(self, row: sqlite3.Row | tuple) -> dict[str, Any]:
        pk, kind, oid, project_id, name, description, metadata, tags, created, deleted_at = row
        if kind == "project":
            return {
                "id": oid, "org_id": ORG_ID, "name": name, "description": description,
                "created": created, "deleted_at": deleted_at, "user_id": None, "settings": None,
            }
        return {
            "id": oid, "project_id": project_id, "name": name, "description": description,
            "created": created, "deleted_at": deleted_at, "user_id": None,
            "metadata": json.loads(metadata) if metadata else None,
            "tags": json.loads(tags) if tags else None, "url_slug": name,
        }

    _OBJECT_COLS = "pk, kind, id, project_id, name, description, metadata, tags, created, deleted_at"

    def create_project(self, name: str, description: str | None = None) -> dict[str, Any]:
        """Create-or-get by name (the existing project is returned unmodified)."""
        if not isinstance(name, str) or not name.strip():
            raise BadInput("project name is required: pass a non-empty `name`")
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {self._OBJECT_COLS} FROM objects WHERE kind='project' AND name=? AND deleted_at IS NULL",
                (name,),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO objects(kind, id, name, description, created) VALUES ('project', ?, ?, ?, ?)",
                    (str(uuid.uuid4()), name, description, now_iso()),
                )
                row = conn.execute(f"SELECT {self._OBJECT_COLS} FROM objects WHERE pk=last_insert_rowid()").fetchone()
        return self._object_dict(row)

    def list_objects(
        self,
        kind: str,
        *,
        name: str | None = None,
        project_id: str | None = None,
        project_name: str | None = None,
        ids: list[str] | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, like Braintrust's list routes."""
        conds, params = ["kind = ?", "deleted_at IS NULL"], [kind]
        if name is not None:
            conds.append("name = ?")
            params.append(name)
        if project_name is not None:
            project = self.find_project(project_name)
            if project is None:
                return []
            project_id = project["id"]
        if project_id is not None:
            conds.append("project_id = ?")
            params.append(project_id)
        if ids:
            conds.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if starting_after:
            conds.append("pk < (SELECT pk FROM objects WHERE id = ?)")
            params.append(starting_after)
        if ending_before:
            conds.append("pk > (SELECT pk FROM objects WHERE id = ?)")
            params.append(ending_before)
        sql = f"SELECT {self._OBJECT_COLS} FROM objects WHERE {' AND '.join(conds)} ORDER BY pk DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [self._object_dict(r) for r in self._conn().execute(sql, params)]

    def find_project(self, name: str) -> dict[str, Any] | None:
        found = self.list_objects("project", name=name, limit=1)
        return found[0] if found else None

    def get_object(self, kind: str, object_id: str) -> dict[str, Any]:
        row = self._conn().execute(
            f"SELECT {self._OBJECT_COLS} FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", (kind, object_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {object_id!r} not found: check the id, or list {kind}s with GET /v1/{kind}")
        return self._object_dict(row)

    def _object_pk(self, kind: str, object_id: str) -> int:
        row = self._conn().execute(
            "SELECT pk FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", (kind, object_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"{kind} {object_id!r} not found: check the id, or list {kind}s with GET /v1/{kind}")
        return row[0]

    def create_dataset(
        self,
        project_id: str,
        name: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create-or-get by (project, name)."""
        if not isinstance(name, str) or not name.strip():
            raise BadInput("dataset name is required: pass a non-empty `name`")
        self.get_object("project", project_id)
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {self._OBJECT_COLS} FROM objects WHERE kind='dataset' AND project_id=? AND name=? AND deleted_at IS NULL",
                (project_id, name),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO objects(kind, id, project_id, name, description, metadata, tags, created)"
                    " VALUES ('dataset', ?, ?, ?, ?, ?, ?, ?)",
                    (
                        str(uuid.uuid4()), project_id, name, description,
                        _dumps(metadata) if metadata is not None else None,
                        _dumps(tags) if tags is not None else None, now_iso(),
                    ),
                )
                row = conn.execute(f"SELECT {self._OBJECT_COLS} FROM objects WHERE pk=last_insert_rowid()").fetchone()
        return self._object_dict(row)

    def patch_dataset(self, dataset_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        current = self.get_object("dataset", dataset_id)
        metadata = current.get("metadata") or {}
        if "metadata" in patch:
            metadata = merge_row(metadata, patch["metadata"] or {}) if patch["metadata"] is not None else None
        with self._write() as conn:
            conn.execute(
                "UPDATE objects SET name=?, description=?, metadata=?, tags=? WHERE id=?",
                (
                    patch.get("name", current["name"]),
                    patch.get("description", current["description"]),
                    _dumps(metadata) if metadata is not None else None,
                    _dumps(patch["tags"]) if patch.get("tags") is not None else (_dumps(current["tags"]) if current["tags"] else None),
                    dataset_id,
                ),
            )
        return self.get_object("dataset", dataset_id)

    def delete_dataset(self, dataset_id: str) -> dict[str, Any]:
        current = self.get_object("dataset", dataset_id)
        stamp = now_iso()
        with self._write() as conn:
            conn.execute("UPDATE objects SET deleted_at=? WHERE id=?", (stamp, dataset_id))
        current["deleted_at"] = stamp
        return current

    def count_rows(self, kind: str, object_id: str) -> int:
        pk = self._object_pk(kind, object_id)
        return self._conn().execute(
            "SELECT COUNT(*) FROM rows r WHERE r.obj=? AND r.head=1 AND r.deleted=0", (pk,)
        ).fetchone()[0]

    # -- writes ------------------------------------------------------------------------------
    def write_rows(self, rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
        """Apply a batch of rows (logs3 shape: each row names its object) under one `_xact_id`.

        Returns the transaction id and the row ids in request order.
        """
        if not isinstance(rows, list):
            raise BadInput("`rows` must be a list of row objects")
        with self._write() as conn:
            xact = self._allocate_xact(conn)
            stamp = now_iso()
            routed: list[tuple[int, str, dict[str, Any]]] = []
            object_cache: dict[tuple[str, str], tuple[int, str]] = {}
            for row in rows:
                if not isinstance(row, dict):
                    raise BadInput("each row must be a JSON object")
                pk, kind = self._route(conn, row, object_cache)
                routed.append((pk, kind, row))
            row_ids = self._apply(conn, routed, xact, stamp)
        return xact, row_ids

    def _allocate_xact(self, conn: sqlite3.Connection) -> int:
        last = conn.execute("SELECT value FROM meta WHERE key='xact'").fetchone()
        xact = next_xact_id(last[0] if last else None, time.time())
        conn.execute("INSERT INTO meta(key, value) VALUES ('xact', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (xact,))
        return xact

    def _route(self, conn: sqlite3.Connection, row: dict[str, Any], cache: dict[tuple[str, str], tuple[int, str]]) -> tuple[int, str]:
        if row.get("dataset_id"):
            key = ("dataset", str(row["dataset_id"]))
        elif row.get("project_id") and row.get("log_id", "g") == "g":
            key = ("project", str(row["project_id"]))
        elif row.get("experiment_id") or row.get("prompt_session_id"):
            raise BadInput("experiments and playground logs are not supported by the local data plane: write project logs or datasets")
        else:
            raise BadInput("row names no object: set `dataset_id`, or `project_id` with `log_id: \"g\"`")
        if key not in cache:
            found = conn.execute(
                "SELECT pk FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", key
            ).fetchone()
            if found is None:
                raise NotFound(f"{key[0]} {key[1]!r} not found: create it first (POST /v1/{key[0]})")
            cache[key] = (found[0], "project_logs" if key[0] == "project" else "dataset")
        return cache[key]

    def _apply(self, conn: sqlite3.Connection, routed: list[tuple[int, str, dict[str, Any]]], xact: int, stamp: str) -> list[str]:
        # Comment rows (SDK feedback with a comment) fold into their target row after the rest.
        comments = [(pk, row) for pk, _, row in routed if _is_comment_row(row)]
        regular = [(pk, kind, row) for pk, kind, row in routed if not _is_comment_row(row)]
        for _, _, row in regular:
            if row.get("id") is None:
                row["id"] = str(uuid.uuid4())
            elif not isinstance(row["id"], str):
                row["id"] = str(row["id"])
        heads = self._load_heads(conn, {(pk, row["id"]) for pk, _, row in regular} | {(pk, _comment_target(row)) for pk, row in comments})
        pending: dict[tuple[int, str], _Version] = {}
        counter = 0
        for pk, kind, row in regular:
            key = (pk, row["id"])
            current = pending.get(key) or heads.get(key)
            version = self._next_version(kind, row, current, stamp, xact, counter)
            counter += 1
            if version is not None:
                pending[key] = version
        orphans: list[tuple[int, str, str]] = []
        for pk, row in comments:
            target = _comment_target(row)
            key = (pk, target)
            current = pending.get(key) or heads.get(key)
            entry = _comment_entry(row, stamp)
            if current is None or current.deleted:
                orphans.append((pk, target, _dumps(entry)))
                continue
            pending[key] = _fold_comments(current, [entry])
        self._fold_orphans(conn, pending, heads)
        if orphans:
            conn.executemany("INSERT INTO orphan_comments(obj, target_id, entry) VALUES (?, ?, ?)", orphans)
        # A head loaded from the file carries its `seq` in `supersedes`; its new version replaces it.
        superseded = [(heads[key].supersedes,) for key in pending if key in heads]
        if superseded:
            conn.executemany("UPDATE rows SET head=0 WHERE seq=?", superseded)
        conn.executemany(
            "INSERT INTO rows(obj, id, xact_id, head, deleted, created, root_span_id, span_id, is_root, pagination_key, data)"
            " VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
            [
                (pk, v.id, xact, int(v.deleted), v.created, v.root_span_id, v.span_id, int(v.is_root), v.pagination_key, _dumps(v.data))
                for (pk, _), v in pending.items()
            ],
        )
        return [row["id"] for _, _, row in regular] + [str(row.get("id")) for _, row in comments]

    def _load_heads(self, conn: sqlite3.Connection, keys: set[tuple[int, str]]) -> dict[tuple[int, str], _Version]:
        heads: dict[tuple[int, str], _Version] = {}
        by_obj: dict[int, list[str]] = {}
        for pk, rid in keys:
            by_obj.setdefault(pk, []).append(rid)
        for pk, ids in by_obj.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for seq, rid, deleted, created, root, span, is_root, pkey, data in conn.execute(
                    "SELECT seq, id, deleted, created, root_span_id, span_id, is_root, pagination_key, data FROM rows"
                    f" WHERE obj=? AND head=1 AND id IN ({','.join('?' * len(chunk))})",
                    [pk, *chunk],
                ):
                    heads[(pk, rid)] = _Version(
                        id=rid, created=created, root_span_id=root, span_id=span, is_root=bool(is_root),
                        pagination_key=pkey, data=json.loads(data), deleted=bool(deleted), supersedes=seq,
                    )
        return heads

    def _next_version(
        self, kind: str, row: dict[str, Any], current: _Version | None, stamp: str, xact: int, counter: int
    ) -> _Version | None:
        data = {k: v for k, v in row.items() if k not in _SYSTEM_FIELDS}
        if row.get("_object_delete"):
            if current is None or current.deleted:
                return None
            return _Version(
                id=current.id, created=current.created, root_span_id=current.root_span_id, span_id=current.span_id,
                is_root=current.is_root, pagination_key=current.pagination_key, data=current.data, deleted=True,
            )
        if row.get("_is_merge") and current is not None and not current.deleted:
            merged = merge_row(current.data, data, row.get("_merge_paths"))
            apply_array_deletes(merged, row.get("_array_delete"))
            return _Version(
                id=current.id, created=current.created, root_span_id=current.root_span_id, span_id=current.span_id,
                is_root=current.is_root, pagination_key=current.pagination_key, data=merged,
            )
        span_id = row.get("span_id") or row["id"]
        root_span_id = row.get("root_span_id") or span_id
        if kind == "dataset":
            data.setdefault("expected", None)
            data.pop("span_parents", None)
            is_root = True
        else:
            is_root = not data.get("span_parents")
        created = canonical_time(row.get("created")) or (current.created if current is not None else stamp)
        keep_key = current is not None and current.created == created
        return _Version(
            id=row["id"], created=created, root_span_id=str(root_span_id), span_id=str(span_id), is_root=is_root,
            pagination_key=current.pagination_key if keep_key else pagination_key(created, xact, counter), data=data,
        )

    def _fold_orphans(self, conn: sqlite3.Connection, pending: dict[tuple[int, str], _Version], heads: dict[tuple[int, str], _Version]) -> None:
        """Comments that arrived before their target row (parallel SDK batches) fold in once it exists."""
        if conn.execute("SELECT 1 FROM orphan_comments LIMIT 1").fetchone() is None:
            return
        for (pk, rid), version in list(pending.items()):
            found = conn.execute("SELECT rowid, entry FROM orphan_comments WHERE obj=? AND target_id=?", (pk, rid)).fetchall()
            if found and not version.deleted:
                pending[(pk, rid)] = _fold_comments(version, [json.loads(e) for _, e in found])
                conn.executemany("DELETE FROM orphan_comments WHERE rowid=?", [(r,) for r, _ in found])

    # -- reads -------------------------------------------------------------------------------
    def resolve_source(self, query: ParsedQuery) -> tuple[int, dict[str, Any]]:
        """The object a query reads, and the routing fields every returned row carries."""
        if query.source == "project_logs":
            kind = "project"
        elif query.source == "dataset":
            kind = "dataset"
        else:
            raise BadInput(f"{query.source}() is not supported by the local data plane: query project_logs() or dataset()")
        ref = query.object_ref
        row = self._conn().execute(
            f"SELECT {self._OBJECT_COLS} FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", (kind, ref)
        ).fetchone()
        if row is None:
            named = self._conn().execute(
                f"SELECT {self._OBJECT_COLS} FROM objects WHERE kind=? AND name=? AND deleted_at IS NULL", (kind, ref)
            ).fetchall()
            if len(named) != 1:
                raise NotFound(f"{kind} {ref!r} not found: pass the {kind} id (or a unique name)")
            row = named[0]
        obj = self._object_dict(row)
        if kind == "project":
            routing = {"org_id": ORG_ID, "project_id": obj["id"], "log_id": "g"}
        else:
            routing = {"project_id": obj["project_id"], "dataset_id": obj["id"]}
        return row[0], routing

    def query(self, query: ParsedQuery, *, version: int | None = None) -> QueryPage:
        """Run a parsed `/btql` query: one page of JSON-encoded rows and the next cursor."""
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
        routing_json = ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in routing.items())
        columns, select_params = _projection(query.select, routing_json)
        conn = self._conn()
        if query.shape in ("traces", "summary"):
            return self._query_traces(conn, obj, version, conds, params, query, limit, descending, columns, select_params)
        col = _SORT_COLUMNS[sort.field]
        op = "<" if descending else ">"
        source = "rows r"
        lower, upper = query.filter.created_range if query.filter is not None else (None, None)
        if col == "r.pagination_key" and (lower or upper):
            # The created range as a key range: each page is one seek in the key index.
            if lower:
                conds.append("r.pagination_key >= ?")
                params.append(_key_bound(lower))
            if upper:
                conds.append("r.pagination_key < ?")
                params.append(_key_bound(upper) + "~")  # past every key created at `upper`
            if version is None:
                source = "rows r INDEXED BY rows_head_page"
        if query.cursor:
            cur = decode_cursor(query.cursor)
            if col == "r.pagination_key":
                conds.append(f"r.pagination_key {op} ?")
                params.append(cur.get("k"))
            else:
                conds.append(f"({col}, r.pagination_key) {op} (?, ?)")
                params.extend([cur.get("v"), cur.get("k")])
        direction = "DESC" if descending else "ASC"
        order = f"{col} {direction}" + ("" if col == "r.pagination_key" else f", r.pagination_key {direction}")
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

    def _query_traces(self, conn, obj, version, conds, params, query, limit, descending, columns, select_params) -> QueryPage:
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


# -- helpers -------------------------------------------------------------------------------------


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
        "id": _encode(rid), "_xact_id": f'"{xact}"', "created": f'"{created}"', "_pagination_key": f'"{pkey}"',
        "root_span_id": _encode(root) if root is not None else "null",
        "span_id": _encode(span) if span is not None else "null", "is_root": "true" if is_root else "false",
    }
    parts, extra = [], 7
    for item in select:
        if len(item.path) == 1 and item.path[0] in _COLUMN_FIELDS:
            value = columns[item.path[0]]
        else:
            value = rec[extra] if rec[extra] is not None else "null"
            extra += 1
        parts.append(f"{_encode(item.alias)}:{value}")
    return ("{" + ",".join(parts) + "}").encode()


def _is_comment_row(row: dict[str, Any]) -> bool:
    return isinstance(row.get("comment"), dict) and isinstance(row.get("origin"), dict) and bool(row["origin"].get("id"))


def _comment_target(row: dict[str, Any]) -> str:
    return str(row["origin"]["id"])


def _comment_entry(row: dict[str, Any], stamp: str) -> dict[str, Any]:
    return {
        "id": str(row.get("id") or uuid.uuid4()),
        "created": canonical_time(row.get("created")) or stamp,
        "comment": row["comment"],
        "origin": {"id": _comment_target(row)},
        "_audit_source": row.get("_audit_source"),
    }


def _fold_comments(current: _Version, entries: list[dict[str, Any]]) -> _Version:
    data = dict(current.data)
    data["comments"] = list(data.get("comments") or []) + entries
    return _Version(
        id=current.id, created=current.created, root_span_id=current.root_span_id, span_id=current.span_id,
        is_root=current.is_root, pagination_key=current.pagination_key, data=data,
    )
