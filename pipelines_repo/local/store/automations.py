"""Project automations: Braintrust's `/v1/project_automation` objects (`id, project_id, user_id,
created, name, description, config`), stored as-is; the plane never runs them.

    automations(id TEXT PRIMARY KEY, project_id TEXT, name TEXT, description TEXT, config TEXT (JSON), created TEXT)

Names are unique per project: `create` returns the existing automation unmodified (like every
create-or-get POST), `replace` (PUT) overwrites its description and config.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from .db import BadInput, NotFound, now_iso
from .objects import Objects

_SCHEMA = """
CREATE TABLE IF NOT EXISTS automations (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
  config TEXT NOT NULL, created TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS automations_by_name ON automations(project_id, name);
"""
_COLUMNS = "id, project_id, name, description, config, created"


def _automation(row: tuple) -> dict[str, Any]:
    oid, project_id, name, description, config, created = row
    return {"id": oid, "project_id": project_id, "user_id": None, "created": created, "name": name,
            "description": description, "config": json.loads(config)}


class Automations(Objects):
    def __init__(self, path: Any):
        super().__init__(path)
        self._conn().executescript(_SCHEMA)  # a plane file from before automations gets the table too

    def _validated(self, body: dict[str, Any]) -> tuple[str, str, str | None, str]:
        project_id, name, config = body.get("project_id"), body.get("name"), body.get("config")
        if not isinstance(project_id, str) or not project_id:
            raise BadInput("project_id is required: create or look up the project first")
        self.get_object("project", project_id)
        if not isinstance(name, str) or not name.strip():
            raise BadInput("project automation `name` is required (a non-empty string)")
        if not isinstance(config, dict) or not isinstance(config.get("event_type"), str):
            raise BadInput("`config` must be an object with an `event_type` (e.g. btql_export, retention)")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise BadInput("`description` must be a string")
        return project_id, name, description, json.dumps(config, sort_keys=True)

    def create_automation(self, body: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
        project_id, name, description, config = self._validated(body)
        with self._write() as conn:
            found = conn.execute(f"SELECT {_COLUMNS} FROM automations WHERE project_id=? AND name=?", (project_id, name)).fetchone()
            if found is not None and not replace:
                return _automation(found)
            if found is not None:
                conn.execute("UPDATE automations SET description=?, config=? WHERE id=?", (description, config, found[0]))
                oid = found[0]
            else:
                oid = str(uuid.uuid4())
                conn.execute("INSERT INTO automations VALUES (?, ?, ?, ?, ?, ?)", (oid, project_id, name, description, config, now_iso()))
        return self.get_automation(oid)

    def get_automation(self, automation_id: str) -> dict[str, Any]:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM automations WHERE id=?", (automation_id,)).fetchone()
        if row is None:
            raise NotFound(f"project_automation {automation_id!r} not found: list them with GET /v1/project_automation?project_id=")
        return _automation(row)

    def list_automations(self, *, project_id: str | None = None, name: str | None = None, ids: list[str] | None = None,
                         limit: int | None = None, starting_after: str | None = None,
                         ending_before: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        where, params = [], []
        for column, value in (("project_id", project_id), ("name", name)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        if ids:
            where.append(f"id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        for op, cursor in (("<", starting_after), (">", ending_before)):  # keyset paging, newest first
            if cursor:
                where.append(f"rowid {op} (SELECT rowid FROM automations WHERE id = ?)")
                params.append(cursor)
        sql = f"SELECT {_COLUMNS} FROM automations" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY rowid DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [_automation(r) for r in self._conn().execute(sql, params)]

    def patch_automation(self, automation_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        current = self.get_automation(automation_id)
        unknown = set(patch) - {"name", "description", "config"}
        if unknown:
            raise BadInput(f"cannot patch {', '.join(sorted(unknown))}: patch name, description or config")
        merged = {**current, **{k: v for k, v in patch.items() if v is not None or k == "description"}}
        _, name, description, config = self._validated(merged)
        with self._write() as conn:
            clash = conn.execute("SELECT id FROM automations WHERE project_id=? AND name=? AND id<>?",
                                 (current["project_id"], name, automation_id)).fetchone()
            if clash is not None:
                raise BadInput(f"project automation {name!r} already exists in this project: choose another name")
            conn.execute("UPDATE automations SET name=?, description=?, config=? WHERE id=?", (name, description, config, automation_id))
        return self.get_automation(automation_id)

    def delete_automation(self, automation_id: str) -> dict[str, Any]:
        current = self.get_automation(automation_id)
        with self._write() as conn:
            conn.execute("DELETE FROM automations WHERE id=?", (automation_id,))
        return current
