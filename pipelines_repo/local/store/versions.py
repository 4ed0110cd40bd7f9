"""Dataset versions: snapshots (named xact ids), the per-version history, and restore with a preview.

Snapshots follow Braintrust's `/v1/dataset_snapshot` objects (`id, dataset_id, name, description,
xact_id, created`); creating one whose name the dataset already has returns the existing one.
`history` is this plane's own listing (Braintrust's API has none): each xact that touched the
dataset with the rows it added, updated and deleted. `restore` never rewinds history: it writes
compensating rows at a new xact so that the head equals the dataset as of the version.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .db import BadInput, NotFound, now_iso
from .writes import Writes

_SNAPSHOT_COLUMNS = ("id", "dataset_id", "name", "description", "xact_id", "created")


class Versions(Writes):
    # -- snapshots -------------------------------------------------------------------------------

    def _snapshot_dict(self, row: tuple) -> dict[str, Any]:
        return dict(zip(_SNAPSHOT_COLUMNS, row))

    def create_snapshot(self, dataset_id: str, name: str, xact_id: str, description: str | None) -> tuple[dict[str, Any], bool]:
        """(snapshot, found_existing)."""
        self.get_object("dataset", dataset_id)
        if not isinstance(name, str) or not name:
            raise BadInput("snapshot `name` is required (a non-empty string)")
        if not str(xact_id).isdigit():
            raise BadInput(f"snapshot `xact_id` must be a decimal transaction id, got {xact_id!r}")
        with self._write() as conn:
            found = conn.execute(
                f"SELECT {', '.join(_SNAPSHOT_COLUMNS)} FROM snapshots WHERE dataset_id=? AND name=?", (dataset_id, name)
            ).fetchone()
            if found is not None:
                return self._snapshot_dict(found), True
            row = (str(uuid.uuid4()), dataset_id, name, description, str(xact_id), now_iso())
            conn.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)", row)
        return self._snapshot_dict(row), False

    def list_snapshots(self, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        sql = f"SELECT {', '.join(_SNAPSHOT_COLUMNS)} FROM snapshots"
        params: tuple = ()
        if dataset_id is not None:
            sql, params = sql + " WHERE dataset_id=?", (dataset_id,)
        return [self._snapshot_dict(r) for r in self._conn().execute(sql + " ORDER BY created DESC, rowid DESC", params)]

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        row = self._conn().execute(f"SELECT {', '.join(_SNAPSHOT_COLUMNS)} FROM snapshots WHERE id=?", (snapshot_id,)).fetchone()
        if row is None:
            raise NotFound(f"dataset_snapshot {snapshot_id!r} not found: list them with GET /v1/dataset_snapshot?dataset_id=")
        return self._snapshot_dict(row)

    def patch_snapshot(self, snapshot_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        current = self.get_snapshot(snapshot_id)
        with self._write() as conn:
            conn.execute("UPDATE snapshots SET name=?, description=? WHERE id=?",
                         (patch.get("name", current["name"]), patch.get("description", current["description"]), snapshot_id))
        return self.get_snapshot(snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        current = self.get_snapshot(snapshot_id)
        with self._write() as conn:
            conn.execute("DELETE FROM snapshots WHERE id=?", (snapshot_id,))
        return current

    # -- history and restore ---------------------------------------------------------------------

    def history(self, dataset_id: str) -> list[dict[str, Any]]:
        """Each xact that touched the dataset, oldest first, with rows added, updated and deleted."""
        obj = self._object_pk("dataset", dataset_id)
        versions: dict[int, dict[str, Any]] = {}
        sql = (
            "SELECT r.xact_id, r.deleted, (SELECT p.deleted FROM rows p WHERE p.obj = r.obj AND p.id = r.id"
            " AND p.seq < r.seq ORDER BY p.seq DESC LIMIT 1) FROM rows r WHERE r.obj = ? ORDER BY r.xact_id"
        )
        for xact, deleted, previous in self._conn().execute(sql, (obj,)):
            entry = versions.setdefault(xact, {"xact_id": str(xact), "added": 0, "updated": 0, "deleted": 0})
            if deleted:
                entry["deleted"] += 1
            elif previous is None or previous:
                entry["added"] += 1
            else:
                entry["updated"] += 1
        return list(versions.values())

    def _states(self, obj: int, version: int) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """(live rows as of `version`: id -> (data, created); live head rows: id -> data)."""
        conn = self._conn()
        past = {
            rid: (data, created)
            for rid, data, created in conn.execute(
                "SELECT r.id, r.data, r.created FROM rows r WHERE r.obj = ? AND r.deleted = 0 AND r.seq = "
                "(SELECT MAX(r2.seq) FROM rows r2 WHERE r2.obj = r.obj AND r2.id = r.id AND r2.xact_id <= ?)",
                (obj, version),
            )
        }
        head = {rid: data for rid, data in conn.execute("SELECT id, data FROM rows WHERE obj = ? AND head = 1 AND deleted = 0", (obj,))}
        return past, head

    def _restore_plan(self, dataset_id: str, version: Any) -> tuple[list[tuple[str, str, str]], list[str]]:
        if not str(version).isdigit():
            raise BadInput(f"restore `version` must be a decimal transaction id, got {version!r}")
        past, head = self._states(self._object_pk("dataset", dataset_id), int(version))
        restore = [
            (rid, data, created) for rid, (data, created) in past.items()
            if rid not in head or (head[rid] != data and json.loads(head[rid]) != json.loads(data))
        ]
        delete = [rid for rid in head if rid not in past]
        return restore, delete

    def restore_preview(self, dataset_id: str, version: Any) -> dict[str, int]:
        restore, delete = self._restore_plan(dataset_id, version)
        return {"rows_to_restore": len(restore), "rows_to_delete": len(delete)}

    def restore(self, dataset_id: str, version: Any) -> dict[str, Any]:
        restore, delete = self._restore_plan(dataset_id, version)
        rows = [{**json.loads(data), "id": rid, "created": created, "dataset_id": dataset_id} for rid, data, created in restore]
        rows += [{"id": rid, "dataset_id": dataset_id, "_object_delete": True} for rid in delete]
        xact = None
        if rows:
            xact, _ = self.write_rows(rows)
        return {"xact_id": str(xact) if xact is not None else None, "rows_restored": len(restore), "rows_deleted": len(delete)}
