"""The experiment registry and summaries (docs/BT_COMPAT.md §A.12).

An experiment is an `objects` row with kind 'experiment' (so its `pk` is what `rows.obj` refers
to, and its rows get the datasets' versioning and merge rules); the fields datasets lack
(`public`, `repo_info`, `base_exp_id`, `dataset_id`, `dataset_version`, ...) are one JSON object
in `experiment_info`. Names are unique within a project: `ensure_new` renames a clash to
`<name>-<unix seconds>` (then `-2`, `-3`...), as hosted Braintrust does.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .db import BadInput, NotFound, dumps, now_iso
from .objects import OBJECT_COLS, Objects
from .summary import cases, summarize_cases

_SCHEMA = "CREATE TABLE IF NOT EXISTS experiment_info (pk INTEGER PRIMARY KEY, info TEXT NOT NULL);"

# The spec's `Experiment` fields kept in `experiment_info`; unknown body keys are ignored.
INFO_FIELDS = (
    "repo_info", "base_exp_id", "dataset_id", "dataset_version", "internal_metadata", "parameters_id",
    "parameters_version", "public",
)
_COLS = ", ".join(f"o.{c.strip()}" for c in OBJECT_COLS.split(",")) + ", i.info"


def _experiment_dict(row: tuple) -> dict[str, Any]:
    pk, _, oid, project_id, name, description, metadata, tags, created, deleted_at, info = row
    extra = json.loads(info) if info else {}
    repo_info = extra.get("repo_info")
    return {
        "id": oid, "project_id": project_id, "name": name, "description": description, "created": created,
        "repo_info": repo_info, "commit": (repo_info or {}).get("commit") if isinstance(repo_info, dict) else None,
        "base_exp_id": extra.get("base_exp_id"), "deleted_at": deleted_at, "dataset_id": extra.get("dataset_id"),
        "dataset_version": None if extra.get("dataset_version") is None else str(extra["dataset_version"]),
        "internal_metadata": extra.get("internal_metadata"), "parameters_id": extra.get("parameters_id"),
        "parameters_version": extra.get("parameters_version"), "public": bool(extra.get("public", False)),
        "user_id": None, "metadata": json.loads(metadata) if metadata else None,
        "tags": json.loads(tags) if tags else None,
    }


class Experiments(Objects):
    """Experiments: create (with `ensure_new`), list, get, patch, delete, summarize, base lookup."""

    def __init__(self, path: Any):
        super().__init__(path)
        self._conn().executescript(_SCHEMA)

    def _select_experiments(self, where: str, params: list[Any], tail: str = "") -> list[dict[str, Any]]:
        sql = (f"SELECT {_COLS} FROM objects o LEFT JOIN experiment_info i ON i.pk = o.pk"
               f" WHERE o.kind = 'experiment' AND o.deleted_at IS NULL AND {where} {tail}")
        return [_experiment_dict(r) for r in self._conn().execute(sql, params)]

    def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        found = self._select_experiments("o.id = ?", [experiment_id])
        if not found:
            raise NotFound(f"experiment {experiment_id!r} not found: check the id, or list experiments with GET /v1/experiment")
        return found[0]

    def list_experiments(
        self, *, name: str | None = None, project_id: str | None = None, project_name: str | None = None,
        ids: list[str] | None = None, limit: int | None = None,
        starting_after: str | None = None, ending_before: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first."""
        conds, params = ["1=1"], []
        if project_name is not None:
            project = self.find_project(project_name)
            if project is None:
                return []
            project_id = project["id"]
        for column, value in (("o.name", name), ("o.project_id", project_id)):
            if value is not None:
                conds.append(f"{column} = ?")
                params.append(value)
        if ids:
            conds.append(f"o.id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if starting_after:  # keyset paging like the other list routes (newest first, by pk)
            conds.append("o.pk < (SELECT pk FROM objects WHERE id = ?)")
            params.append(starting_after)
        if ending_before:
            conds.append("o.pk > (SELECT pk FROM objects WHERE id = ?)")
            params.append(ending_before)
        tail = "ORDER BY o.pk DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return self._select_experiments(" AND ".join(conds), params, tail)

    def create_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/experiment`: get by (project, name) unless `ensure_new`, which renames a clash."""
        project_id = body.get("project_id")
        if not project_id:
            raise BadInput("project_id is required to create an experiment: create or look up the project first")
        self.get_object("project", project_id)
        name = body.get("name") or f"experiment-{int(time.time())}"
        if not isinstance(name, str):
            raise BadInput("experiment name must be a string")
        info = {k: body[k] for k in INFO_FIELDS if body.get(k) is not None}
        if "dataset_version" in info:
            info["dataset_version"] = str(info["dataset_version"])
        with self._write() as conn:
            taken = {n for (n,) in conn.execute(
                "SELECT name FROM objects WHERE kind='experiment' AND project_id=? AND deleted_at IS NULL", (project_id,))}
            if name in taken and not body.get("ensure_new", False):
                pk = conn.execute("SELECT pk FROM objects WHERE kind='experiment' AND project_id=? AND name=?"
                                  " AND deleted_at IS NULL", (project_id, name)).fetchone()[0]
            else:
                name = _unique(name, taken)
                if "base_exp_id" not in info and body.get("ancestor_commits"):
                    info["base_exp_id"] = self._base_by_commit(project_id, body["ancestor_commits"])
                conn.execute(
                    "INSERT INTO objects(kind, id, project_id, name, description, metadata, tags, created)"
                    " VALUES ('experiment', ?, ?, ?, ?, ?, ?, ?)",
                    (str(uuid.uuid4()), project_id, name, body.get("description"),
                     dumps(body["metadata"]) if body.get("metadata") is not None else None,
                     dumps(body["tags"]) if body.get("tags") is not None else None, now_iso()),
                )
                pk = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                conn.execute("INSERT INTO experiment_info(pk, info) VALUES (?, ?)", (pk, dumps(info)))
        return self._select_experiments("o.pk = ?", [pk])[0]

    def _base_by_commit(self, project_id: str, commits: list[Any]) -> str | None:
        """The newest experiment whose `repo_info.commit` comes first in `ancestor_commits`."""
        by_commit: dict[str, str] = {}
        for exp in self.list_experiments(project_id=project_id):
            if exp["commit"]:
                by_commit.setdefault(exp["commit"], exp["id"])
        return next((by_commit[c] for c in commits if c in by_commit), None)

    def patch_experiment(self, experiment_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """`name`, `description`, `tags`, `metadata` and the info fields replace; others are ignored."""
        current = self.get_experiment(experiment_id)
        info = {k: current[k] for k in INFO_FIELDS if current.get(k) is not None}
        info.update({k: patch[k] for k in INFO_FIELDS if k in patch})
        pick = lambda k: patch[k] if k in patch else current[k]  # noqa: E731
        with self._write() as conn:
            pk = conn.execute("SELECT pk FROM objects WHERE id=?", (experiment_id,)).fetchone()[0]
            conn.execute(
                "UPDATE objects SET name=?, description=?, metadata=?, tags=? WHERE pk=?",
                (pick("name"), pick("description"), None if pick("metadata") is None else dumps(pick("metadata")),
                 None if pick("tags") is None else dumps(pick("tags")), pk),
            )
            conn.execute("INSERT OR REPLACE INTO experiment_info(pk, info) VALUES (?, ?)", (pk, dumps(info)))
        return self.get_experiment(experiment_id)

    def delete_experiment(self, experiment_id: str) -> dict[str, Any]:
        current = self.get_experiment(experiment_id)
        current["deleted_at"] = now_iso()
        with self._write() as conn:
            conn.execute("UPDATE objects SET deleted_at=? WHERE id=?", (current["deleted_at"], experiment_id))
        return current

    def base_experiment(self, experiment: dict[str, Any]) -> dict[str, Any] | None:
        """The comparison default: `base_exp_id`, else the project's newest experiment created before it."""
        if experiment.get("base_exp_id"):
            try:
                return self.get_experiment(experiment["base_exp_id"])
            except NotFound:
                return None
        older = self._select_experiments(
            "o.project_id = ? AND o.pk < (SELECT pk FROM objects WHERE id = ?)", [experiment["project_id"], experiment["id"]],
            "ORDER BY o.pk DESC LIMIT 1")
        return older[0] if older else None

    def experiment_cases(self, experiment_id: str) -> list[Any]:
        """The experiment's traces at head, as `summary.Case`s."""
        pk = self._object_pk("experiment", experiment_id)
        rows = self._conn().execute(
            "SELECT root_span_id, is_root, data FROM rows WHERE obj=? AND head=1 AND deleted=0", (pk,))
        return cases([(root, bool(is_root), json.loads(data)) for root, is_root, data in rows])

    def summarize_experiment(
        self, experiment_id: str, *, summarize_scores: bool, comparison_id: str | None,
    ) -> dict[str, Any]:
        """The summarize body without URLs: names, and (with `summarize_scores`) scores, metrics, comparison."""
        experiment = self.get_experiment(experiment_id)
        project = self.get_object("project", experiment["project_id"])
        out: dict[str, Any] = {"project_name": project["name"], "experiment_name": experiment["name"]}
        if not summarize_scores:
            return out
        base = self.get_experiment(comparison_id) if comparison_id else self.base_experiment(experiment)
        scores, metrics = summarize_cases(
            self.experiment_cases(experiment_id), self.experiment_cases(base["id"]) if base else None)
        out.update(comparison_experiment_name=base["name"] if base else None, scores=scores, metrics=metrics)
        return out


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    candidate = f"{name}-{int(time.time())}"
    counter = 2
    base = candidate
    while candidate in taken:
        candidate = f"{base}-{counter}"
        counter += 1
    return candidate
