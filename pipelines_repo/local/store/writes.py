"""Versioned row writes: logs3 batches under one `_xact_id` (inserts, replaces, merges, deletes, comments).

A write appends a version of each touched row and clears `head` on the one it supersedes. Comment
rows fold into their target row's `comments`; a comment whose target does not exist yet waits in
`orphan_comments` until it does (parallel SDK batches).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..merge import apply_array_deletes, merge_row
from ..query import QueryError
from ..query.times import canonical, parse_timestamp
from ..xact import next_xact_id
from .db import BadInput, NotFound, dumps, now_iso, pagination_key
from .objects import Objects

# Fields that live in columns or only route a row; everything else is the row's JSON `data`.
_SYSTEM_FIELDS = frozenset(
    {
        "id", "_xact_id", "created", "_pagination_key", "root_span_id", "span_id", "is_root",
        "project_id", "dataset_id", "experiment_id", "log_id", "org_id", "prompt_session_id",
        "_is_merge", "_merge_paths", "_array_delete", "_object_delete", "_parent_id",
        "_audit_source", "_audit_metadata",
    }
)


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


def _revised(current: _Version, data: dict[str, Any], deleted: bool = False) -> _Version:
    """A new version of `current` with other data (or deleted): same id, span fields and key."""
    return dataclasses.replace(current, data=data, deleted=deleted, supersedes=None)


def _created(value: Any) -> str | None:
    """A row's `created` as canonical text, None when absent."""
    if value is None:
        return None
    try:
        return canonical(parse_timestamp(value))
    except QueryError as exc:
        raise BadInput(f"invalid timestamp {value!r}: use ISO-8601, e.g. 2026-01-31T12:00:00Z") from exc


class Writes(Objects):
    """`write_rows`: the one write path for rows of project logs, experiments and datasets."""

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
                pk, kind = self._route(row, object_cache)
                routed.append((pk, kind, row))
            row_ids = self._apply(conn, routed, xact, stamp)
        return xact, row_ids

    def _allocate_xact(self, conn: sqlite3.Connection) -> int:
        last = conn.execute("SELECT value FROM meta WHERE key='xact'").fetchone()
        xact = next_xact_id(last[0] if last else None, time.time())
        conn.execute("INSERT INTO meta(key, value) VALUES ('xact', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (xact,))
        return xact

    def _route(self, row: dict[str, Any], cache: dict[tuple[str, str], tuple[int, str]]) -> tuple[int, str]:
        if row.get("dataset_id"):
            key = ("dataset", str(row["dataset_id"]))
        elif row.get("project_id") and row.get("log_id", "g") == "g":
            key = ("project", str(row["project_id"]))
        elif row.get("experiment_id"):
            key = ("experiment", str(row["experiment_id"]))
        elif row.get("prompt_session_id"):
            raise BadInput("playground logs are not supported by the local data plane: write project logs, experiments or datasets")
        else:
            raise BadInput("row names no object: set `dataset_id`, `experiment_id`, or `project_id` with `log_id: \"g\"`")
        if key not in cache:
            pk = self._find_pk(*key)  # this thread's connection: inside the write transaction
            if pk is None:
                raise NotFound(f"{key[0]} {key[1]!r} not found: create it first (POST /v1/{key[0]})")
            cache[key] = (pk, "project_logs" if key[0] == "project" else key[0])
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
            version = _next_version(kind, row, current, stamp, xact, counter)
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
                orphans.append((pk, target, dumps(entry)))
                continue
            pending[key] = _fold_comments(current, [entry])
        _fold_orphans(conn, pending)
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
                (pk, v.id, xact, int(v.deleted), v.created, v.root_span_id, v.span_id, int(v.is_root), v.pagination_key, dumps(v.data))
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


def _next_version(kind: str, row: dict[str, Any], current: _Version | None, stamp: str, xact: int, counter: int) -> _Version | None:
    """What `row` makes of the row's current version: deleted, merged into, or replaced (None: no change)."""
    data = {k: v for k, v in row.items() if k not in _SYSTEM_FIELDS}
    if row.get("_object_delete"):
        if current is None or current.deleted:
            return None
        return _revised(current, current.data, deleted=True)
    if row.get("_is_merge") and current is not None and not current.deleted:
        merged = merge_row(current.data, data, row.get("_merge_paths"))
        apply_array_deletes(merged, row.get("_array_delete"))
        return _revised(current, merged)
    span_id = row.get("span_id") or row["id"]
    root_span_id = row.get("root_span_id") or span_id
    if kind == "dataset":
        data.setdefault("expected", None)
        data.pop("span_parents", None)
        is_root = True
    else:
        is_root = not data.get("span_parents")
    created = _created(row.get("created")) or (current.created if current is not None else stamp)
    keep_key = current is not None and current.created == created
    return _Version(
        id=row["id"], created=created, root_span_id=str(root_span_id), span_id=str(span_id), is_root=is_root,
        pagination_key=current.pagination_key if keep_key else pagination_key(created, xact, counter), data=data,
    )


def _fold_orphans(conn: sqlite3.Connection, pending: dict[tuple[int, str], _Version]) -> None:
    """Comments that arrived before their target row (parallel SDK batches) fold in once it exists."""
    if conn.execute("SELECT 1 FROM orphan_comments LIMIT 1").fetchone() is None:
        return
    for (pk, rid), version in list(pending.items()):
        found = conn.execute("SELECT rowid, entry FROM orphan_comments WHERE obj=? AND target_id=?", (pk, rid)).fetchall()
        if found and not version.deleted:
            pending[(pk, rid)] = _fold_comments(version, [json.loads(e) for _, e in found])
            conn.executemany("DELETE FROM orphan_comments WHERE rowid=?", [(r,) for r, _ in found])


def _is_comment_row(row: dict[str, Any]) -> bool:
    return isinstance(row.get("comment"), dict) and isinstance(row.get("origin"), dict) and bool(row["origin"].get("id"))


def _comment_target(row: dict[str, Any]) -> str:
    return str(row["origin"]["id"])


def _comment_entry(row: dict[str, Any], stamp: str) -> dict[str, Any]:
    return {
        "id": str(row.get("id") or uuid.uuid4()),
        "created": _created(row.get("created")) or stamp,
        "comment": row["comment"],
        "origin": {"id": _comment_target(row)},
        "_audit_source": row.get("_audit_source"),
    }


def _fold_comments(current: _Version, entries: list[dict[str, Any]]) -> _Version:
    data = dict(current.data)
    data["comments"] = list(data.get("comments") or []) + entries
    return _revised(current, data)
