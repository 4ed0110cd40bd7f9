"""Datasets as objects: list, view, delete; snapshots and restore; the schemas stored in a dataset.

    list_datasets(client, project) -> list[dict]
    view_rows(client, target, *, limit=200) -> Iterator[dict]
    drop_dataset(client, target) -> dict
    snapshots: list_snapshots / create_snapshot / delete_snapshot / restore_snapshot
    schemas:   show_schemas / infer_dataset_schemas / set_schema / check_schemas

Snapshots use ``/v1/dataset_snapshot`` (Braintrust's API) and restore uses
``/v1/dataset/{id}/restore[/preview]``: restore never rewinds history, it writes compensating rows
at a new version. Schemas live in ``metadata.__schemas`` of the dataset, as in Braintrust's UI.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from itertools import islice
from typing import Any

from ..client import BraintrustClient
from ..engine.push import latest_dataset_version
from ..engine.spec import TargetSpec
from .copy import require_dataset
from .errors import DatasetError
from .reads import iter_rows
from .schema import SCHEMA_FIELDS, DatasetSchemas, infer_schemas

__all__ = [
    "check_schemas", "create_snapshot", "delete_snapshot", "drop_dataset", "find_snapshot", "infer_dataset_schemas",
    "list_datasets", "list_snapshots", "restore_snapshot", "set_schema", "show_schemas", "view_rows",
]


def list_datasets(client: BraintrustClient, project_name: str) -> list[dict[str, Any]]:
    project = client.get_project(name=project_name)
    if project is None:
        raise DatasetError(f"project {project_name!r}", "does not exist", "check --project (names are case-sensitive)")
    return client.list_datasets(project["id"])


def view_rows(client: BraintrustClient, target: TargetSpec, *, limit: int | None = 200, version: str | None = None) -> Iterator[dict]:
    dataset = require_dataset(client, target)
    rows = iter_rows(client, dataset["id"], version=version)
    return islice(rows, limit) if limit is not None else rows


def drop_dataset(client: BraintrustClient, target: TargetSpec) -> dict[str, Any]:
    dataset = require_dataset(client, target)
    client.delete_dataset(dataset["id"])
    return dataset


# -- snapshots ---------------------------------------------------------------------------------


def list_snapshots(client: BraintrustClient, target: TargetSpec) -> list[dict[str, Any]]:
    return client.list_dataset_snapshots(require_dataset(client, target)["id"])


def find_snapshot(client: BraintrustClient, dataset_id: str, name: str | None, xact: str | None) -> dict[str, Any]:
    snapshots = client.list_dataset_snapshots(dataset_id)
    # by name when one is given, else by xact id (never either: two snapshots could match)
    found = [s for s in snapshots if (s.get("name") == name if name is not None else str(s.get("xact_id")) == xact)]
    if not found:
        raise DatasetError(f"snapshot {name or xact!r}", "not found", "list them with `datasets snapshots list`")
    if len(found) > 1:
        raise DatasetError(f"snapshot {name!r}", "names several snapshots", "pass --snapshot XACT_ID instead")
    return found[0]


def create_snapshot(
    client: BraintrustClient, target: TargetSpec, name: str | None = None, *,
    xact_id: str | None = None, description: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """(snapshot, found_existing). Default name ``snapshot-YYYYMMDD-HHMMSSz``; default version the head."""
    dataset = require_dataset(client, target)
    xact_id = xact_id or latest_dataset_version(client, dataset["id"])
    if xact_id is None:
        raise DatasetError(f"dataset {target.dataset_name!r}", "is empty: there is no version to snapshot", "write rows first")
    name = name or datetime.now(timezone.utc).strftime("snapshot-%Y%m%d-%H%M%Sz")
    return client.create_dataset_snapshot(dataset["id"], name, str(xact_id), description)


def delete_snapshot(client: BraintrustClient, target: TargetSpec, name: str | None, xact: str | None = None) -> dict[str, Any]:
    snapshot = find_snapshot(client, require_dataset(client, target)["id"], name, xact)
    client.delete_dataset_snapshot(snapshot["id"])
    return snapshot


def restore_snapshot(
    client: BraintrustClient, target: TargetSpec, name: str | None, xact: str | None = None, *, force: bool = False,
) -> dict[str, Any]:
    """The preview ``{rows_to_restore, rows_to_delete}``; with ``force`` also the restore's result."""
    dataset = require_dataset(client, target)
    version = str(find_snapshot(client, dataset["id"], name, xact)["xact_id"]) if name else xact
    if version is None:
        raise DatasetError("restore", "needs a snapshot", "pass --name NAME or --snapshot XACT_ID")
    out: dict[str, Any] = {"version": version, "preview": client.restore_dataset_preview(dataset["id"], version)}
    if force:
        out["restored"] = client.restore_dataset(dataset["id"], version)
    return out


# -- schemas -----------------------------------------------------------------------------------


def show_schemas(client: BraintrustClient, target: TargetSpec) -> dict[str, Any]:
    return DatasetSchemas.from_dataset(require_dataset(client, target)).raw


def infer_dataset_schemas(
    client: BraintrustClient, target: TargetSpec, *, sample: int = 100, write: bool = False, enforce: bool = False,
) -> dict[str, Any]:
    """Schemas that accept the first ``sample`` rows; with ``write`` stored in the dataset."""
    dataset = require_dataset(client, target)
    inferred = infer_schemas(islice(iter_rows(client, dataset["id"]), sample))
    if enforce:
        inferred = {field: {**schema, "enforce": True} for field, schema in inferred.items()}
    if write and inferred:
        _store(client, dataset, inferred)
    return inferred


def set_schema(client: BraintrustClient, target: TargetSpec, field: str, schema: Mapping[str, Any] | None, *, enforce: bool | None = None) -> dict[str, Any]:
    if field not in SCHEMA_FIELDS:
        raise DatasetError(f"--field {field}", "is not a schema field", f"use one of {', '.join(SCHEMA_FIELDS)}")
    dataset = require_dataset(client, target)
    if schema is not None:
        schema = dict(schema)
        if enforce is not None:
            schema["enforce"] = enforce
        DatasetSchemas({field: schema})  # validate before storing
    return _store(client, dataset, {field: schema}).get(field) or {}


def _store(client: BraintrustClient, dataset: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Replace whole schemas. A PATCH deep-merges metadata, so each field is nulled first and then
    set: a schema that lost a property must not keep it from the old one."""
    client.replace_dataset_metadata(dataset["id"], {"__schemas": {field: None for field in updates}})
    kept = {field: schema for field, schema in updates.items() if schema is not None}
    updated = client.replace_dataset_metadata(dataset["id"], {"__schemas": kept}) if kept else client.get_dataset(dataset["id"])
    return (updated.get("metadata") or {}).get("__schemas") or {}


def check_schemas(client: BraintrustClient, target: TargetSpec, *, version: str | None = None) -> dict[str, Any]:
    """Every error of every row against every schema (enforced or not)."""
    dataset = require_dataset(client, target)
    schemas = DatasetSchemas.from_dataset(dataset)
    if not schemas:
        raise DatasetError(f"dataset {target.dataset_name!r}", "has no schema", "set one with `datasets schema set` or `schema infer --write`")
    checked, errors = 0, []
    for row in iter_rows(client, dataset["id"], version=version):
        checked += 1
        for error in schemas.errors(row, enforced_only=False):
            errors.append({"id": row["id"], **error.to_dict()})
    return {"rows": checked, "invalid_rows": len({e["id"] for e in errors}), "errors": errors}
