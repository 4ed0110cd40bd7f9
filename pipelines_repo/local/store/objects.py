"""The object registry: projects and datasets (create-or-get, list, get, patch, soft delete)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from ..merge import merge_row
from .db import ORG_ID, BadInput, Database, NotFound, dumps, now_iso

OBJECT_COLS = "pk, kind, id, project_id, name, description, metadata, tags, created, deleted_at"


def object_dict(row: sqlite3.Row | tuple) -> dict[str, Any]:
    """An `objects` row (`OBJECT_COLS`) as Braintrust's project or dataset object."""
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


def _not_found(kind: str, object_id: str) -> NotFound:
    return NotFound(f"{kind} {object_id!r} not found: check the id, or list {kind}s with GET /v1/{kind}")


class Objects(Database):
    """Projects and datasets, rows of the `objects` table; `pk` is what `rows.obj` refers to."""

    def _object_row(self, kind: str, object_id: str) -> tuple | None:
        return self._conn().execute(
            f"SELECT {OBJECT_COLS} FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", (kind, object_id)
        ).fetchone()

    def _find_pk(self, kind: str, object_id: str) -> int | None:
        row = self._conn().execute(
            "SELECT pk FROM objects WHERE kind=? AND id=? AND deleted_at IS NULL", (kind, object_id)
        ).fetchone()
        return None if row is None else row[0]

    def _object_pk(self, kind: str, object_id: str) -> int:
        pk = self._find_pk(kind, object_id)
        if pk is None:
            raise _not_found(kind, object_id)
        return pk

    def _create_or_get(self, find_sql: str, find_params: tuple, insert_sql: str, insert_params: tuple) -> dict[str, Any]:
        """The live object `find_sql` selects, else the one `insert_sql` creates (one transaction)."""
        with self._write() as conn:
            row = conn.execute(f"SELECT {OBJECT_COLS} FROM objects WHERE {find_sql}", find_params).fetchone()
            if row is None:
                conn.execute(insert_sql, insert_params)
                row = conn.execute(f"SELECT {OBJECT_COLS} FROM objects WHERE pk=last_insert_rowid()").fetchone()
        return object_dict(row)

    def create_project(self, name: str, description: str | None = None) -> dict[str, Any]:
        """Create-or-get by name (the existing project is returned unmodified)."""
        if not isinstance(name, str) or not name.strip():
            raise BadInput("project name is required: pass a non-empty `name`")
        return self._create_or_get(
            "kind='project' AND name=? AND deleted_at IS NULL", (name,),
            "INSERT INTO objects(kind, id, name, description, created) VALUES ('project', ?, ?, ?, ?)",
            (str(uuid.uuid4()), name, description, now_iso()),
        )

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
        sql = f"SELECT {OBJECT_COLS} FROM objects WHERE {' AND '.join(conds)} ORDER BY pk DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [object_dict(r) for r in self._conn().execute(sql, params)]

    def find_project(self, name: str) -> dict[str, Any] | None:
        """The live project named `name`, or None."""
        found = self.list_objects("project", name=name, limit=1)
        return found[0] if found else None

    def get_object(self, kind: str, object_id: str) -> dict[str, Any]:
        """The live project or dataset with this id (NotFound otherwise)."""
        row = self._object_row(kind, object_id)
        if row is None:
            raise _not_found(kind, object_id)
        return object_dict(row)

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
        return self._create_or_get(
            "kind='dataset' AND project_id=? AND name=? AND deleted_at IS NULL", (project_id, name),
            "INSERT INTO objects(kind, id, project_id, name, description, metadata, tags, created)"
            " VALUES ('dataset', ?, ?, ?, ?, ?, ?, ?)",
            (
                str(uuid.uuid4()), project_id, name, description,
                dumps(metadata) if metadata is not None else None,
                dumps(tags) if tags is not None else None, now_iso(),
            ),
        )

    def patch_dataset(self, dataset_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a PATCH: `name`, `description`, `tags` replace (null `tags` keeps them); `metadata` merges (null clears)."""
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
                    dumps(metadata) if metadata is not None else None,
                    dumps(patch["tags"]) if patch.get("tags") is not None else (dumps(current["tags"]) if current["tags"] else None),
                    dataset_id,
                ),
            )
        return self.get_object("dataset", dataset_id)

    def delete_dataset(self, dataset_id: str) -> dict[str, Any]:
        """Soft delete: the dataset gets `deleted_at` and disappears from lists and reads."""
        current = self.get_object("dataset", dataset_id)
        stamp = now_iso()
        with self._write() as conn:
            conn.execute("UPDATE objects SET deleted_at=? WHERE id=?", (stamp, dataset_id))
        current["deleted_at"] = stamp
        return current
