"""Copy rows between datasets, and delete rows, through the same write path as uploads.

    copy_dataset(client, source, dest, *, version=None, filter_sql=None, options=None) -> UploadResult
    delete_rows(client, target, *, ids=None, filter_sql=None, dry_run=False) -> DeleteResult

A copied row keeps its id and gets ``origin`` pointing at the source row (``object_type: dataset``,
the source dataset id, the row id and its ``_xact_id``), as Braintrust defines ``origin``; the
destination's enforced schemas apply, and re-copying an unchanged source writes nothing.
Deletes are tombstones (``_object_delete``) sent through the engine's push path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ..client import BraintrustClient
from ..engine.policy import PushPolicy
from ..engine.push import push_rows, resolve_target
from ..engine.spec import TargetSpec
from .errors import DatasetError
from .ids import content_of
from .reads import iter_rows, rows_by_id
from .upload import UploadOptions, UploadResult, find_dataset, write_rows
from .versions import resolve_version

__all__ = ["DeleteResult", "copy_dataset", "delete_rows", "require_dataset"]

# tombstones of rows found above: nothing to compare or validate
TOMBSTONES = PushPolicy(compare=False, trusted=True)


def require_dataset(client: BraintrustClient, target: TargetSpec) -> dict[str, Any]:
    project, dataset = find_dataset(client, target)
    if dataset is None:
        where = f"project {target.project_name or target.project_id!r}"
        raise DatasetError(
            where, f"has no dataset {target.dataset_name!r}" if project else "does not exist",
            "check --project and the dataset name (`bt-dagster datasets list --project P`)",
        )
    return dataset


def copy_dataset(
    client: BraintrustClient,
    source: TargetSpec,
    dest: TargetSpec,
    *,
    version: str | None = None,
    filter_sql: str | None = None,
    options: UploadOptions | None = None,
) -> UploadResult:
    dataset = require_dataset(client, source)
    pinned = resolve_version(client, dataset["id"], version) if version else None

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for row in iter_rows(client, dataset["id"], version=pinned, filter_sql=filter_sql):
            copied = content_of(row)
            copied["id"] = row["id"]
            copied["origin"] = {"object_type": "dataset", "object_id": dataset["id"], "id": row["id"],
                                "_xact_id": str(row["_xact_id"]), "created": row.get("created")}
            yield f"row {row['id']}", copied

    return write_rows(client, rows(), dest, options or UploadOptions(), where=f"dataset {source.dataset_name!r}")


@dataclass
class DeleteResult:
    dataset_id: str
    matched: int
    deleted: int
    ids: list[str]
    dataset_version: str | None
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def delete_rows(
    client: BraintrustClient,
    target: TargetSpec,
    *,
    ids: Iterable[str] | None = None,
    filter_sql: str | None = None,
    dry_run: bool = False,
) -> DeleteResult:
    """Delete the rows with ``ids`` (those that exist) or matching ``filter_sql``."""
    if (ids is None) == (filter_sql is None):
        raise DatasetError("rows delete", "needs exactly one of --ids or --filter", "pass --ids ID... or --filter SQL")
    dataset = require_dataset(client, target)
    if ids is not None:
        matched = sorted(rows_by_id(client, dataset["id"], list(ids), fields=("id",)))
    else:
        matched = [row["id"] for row in iter_rows(client, dataset["id"], filter_sql=filter_sql, fields=("id",))]
    version = None
    if matched and not dry_run:
        resolved = resolve_target(client, target)
        pushed = push_rows(client, ({"id": i, "_object_delete": True} for i in matched), resolved, allow_deletes=True, policy=TOMBSTONES)
        version = pushed.version
    return DeleteResult(dataset["id"], len(matched), 0 if dry_run else len(matched), matched, version, dry_run)
