"""Purging deleted rows: every stored version of rows whose head is a tombstone, then the space back.

Not part of Braintrust's API. On Braintrust a delete (``_object_delete``) is purged on its side; on
this plane ``rows`` keeps every version (docs/ARCHITECTURE.md), so a deleted log would still sit in
the file as history. :func:`purge_deleted` removes all versions of the object's rows whose head is
deleted (optionally only those ``created`` before ``before``, or only ``ids``), so a deleted log is
gone, not hidden, and returns the freed pages to the file system: ``PRAGMA incremental_vacuum``
when the file was created with ``auto_vacuum=INCREMENTAL`` (new files are), else one ``VACUUM``
that also switches the file to incremental mode; then a WAL checkpoint so the main file shrinks.
Live rows and rows deleted after ``before`` are untouched.

:func:`purge_experiment` is the same for a whole experiment: ``DELETE /v1/experiment/{id}`` only
sets ``deleted_at`` (the registry row stays, as a record), so its rows would stay in the file; the
purge removes every stored version of them, and refuses a live experiment.
"""

from __future__ import annotations

from typing import Any

from .db import BadInput, Database, NotFound

__all__ = ["purge_deleted", "purge_experiment"]

_KINDS = {"project_logs": "project", "dataset": "dataset"}


def _file_bytes(db: Database) -> int:
    return db.path.stat().st_size if db.path.exists() else 0


def _reclaim(db: Database) -> str:
    conn = db._conn()  # noqa: SLF001 - the store's own connection
    mode = conn.execute("PRAGMA auto_vacuum").fetchone()[0]
    if mode == 2:  # incremental
        # executescript steps the pragma to the end; execute() would free a single page.
        conn.executescript("PRAGMA incremental_vacuum;")
        how = "incremental_vacuum"
    else:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("VACUUM")  # rewrites the file once; later purges are incremental
        how = "vacuum"
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return how


def purge_deleted(store: Any, kind: str, object_id: str, *, before: str | None = None, ids: list[str] | None = None) -> dict[str, Any]:
    """Delete every version of the deleted rows of one object (see the module doc)."""
    if kind not in _KINDS:
        raise BadInput(f"purge: unknown object kind {kind!r}: use project_logs or dataset")
    if before is None and ids is None:
        raise BadInput("purge needs `before` (ISO time: rows created before it) or `ids` (row ids)")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise BadInput("purge `ids` must be a list of row id strings")
    canonical_before = None
    if before is not None:
        from ..query.times import canonical, parse_timestamp

        canonical_before = canonical(parse_timestamp(before))
    obj = store._object_pk(_KINDS[kind], object_id)  # noqa: SLF001 - raises NotFound naming the object
    size_before = _file_bytes(store)
    where, params = "obj = ? AND head = 1 AND deleted = 1", [obj]
    if canonical_before is not None:
        where, params = where + " AND created < ?", [*params, canonical_before]
    rows = versions = 0
    with store._write() as conn:  # noqa: SLF001
        targets = [rid for (rid,) in conn.execute(f"SELECT id FROM rows WHERE {where}", params)]
        if ids is not None:
            wanted = set(ids)
            targets = [rid for rid in targets if rid in wanted]
        for start in range(0, len(targets), 500):
            chunk = targets[start : start + 500]
            marks = ",".join("?" * len(chunk))
            versions += conn.execute(f"DELETE FROM rows WHERE obj = ? AND id IN ({marks})", [obj, *chunk]).rowcount
            conn.execute(f"DELETE FROM orphan_comments WHERE obj = ? AND target_id IN ({marks})", [obj, *chunk])
            rows += len(chunk)
    how = _reclaim(store) if versions else "nothing to reclaim"
    return {
        "object_type": kind, "object_id": object_id, "before": canonical_before, "rows_purged": rows,
        "versions_purged": versions, "bytes_before": size_before, "bytes_after": _file_bytes(store), "reclaimed_by": how,
    }


def purge_experiment(store: Any, experiment_id: str) -> dict[str, Any]:
    """Delete every stored row of a deleted experiment (see the module doc)."""
    found = store._conn().execute(  # noqa: SLF001 - deleted experiments are invisible to the store's getters
        "SELECT pk, deleted_at FROM objects WHERE kind='experiment' AND id=?", (experiment_id,)).fetchone()
    if found is None:
        raise NotFound(f"experiment {experiment_id!r} not found: check the id")
    obj, deleted_at = found
    if deleted_at is None:
        raise BadInput(f"experiment {experiment_id!r} is not deleted: DELETE /v1/experiment/{experiment_id} first")
    size_before = _file_bytes(store)
    with store._write() as conn:  # noqa: SLF001
        (rows,) = conn.execute("SELECT count(DISTINCT id) FROM rows WHERE obj = ?", (obj,)).fetchone()
        versions = conn.execute("DELETE FROM rows WHERE obj = ?", (obj,)).rowcount
        conn.execute("DELETE FROM orphan_comments WHERE obj = ?", (obj,))
    how = _reclaim(store) if versions else "nothing to reclaim"
    return {
        "object_type": "experiment", "object_id": experiment_id, "deleted_at": deleted_at, "rows_purged": rows,
        "versions_purged": versions, "bytes_before": size_before, "bytes_after": _file_bytes(store), "reclaimed_by": how,
    }
