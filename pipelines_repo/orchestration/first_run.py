"""The first run of a new home: materialize the windows that hold logs, for every example, once.

    materialize_demo(pipelines_dir, instance, client) -> list[DemoRun]

So that a new user's first `make dev` shows filled datasets, partitions, checks and lineage, each
declared pipeline is materialized over the daily windows its source project has logs in (one run
per pipeline, a single-run backfill of the range), and each `DatasetFile` once. A pipeline or file
that was materialized before is left alone, so the command is safe to run on every start. Windows
come from the logs themselves (the oldest and newest `created`), never from the clock alone.
Export automations and retention policies are not run: their windows are transaction time, and
deleting demo logs on a first start would surprise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ..client import BraintrustClient, NotFoundError
from ..datasets.declaration import DatasetFileSpec
from ..engine.loader import discover_declarations
from ..engine.btql import ident, project_logs_from
from ..engine.window import parse_timestamp
from .compiler import build_definitions, default_pipelines_dir
from .translator import BraintrustTranslator

__all__ = ["FIRST_RUN_TAG", "DemoRun", "materialize_demo"]

FIRST_RUN_TAG = "bt_dagster/first_run"


@dataclass
class DemoRun:
    group: str
    partitions: int
    success: bool
    skipped: str | None = None


def _log_days(client: BraintrustClient, project_name: str) -> tuple[str, str] | None:
    """(first, last) UTC day with logs in the project, or None when it has none."""
    try:
        project = client.get_project(name=project_name)
    except NotFoundError:
        project = None
    if project is None:
        return None
    days = []
    for direction in ("asc", "desc"):
        query = {"select": [{"alias": "created", "expr": ident("created")}], "from": project_logs_from(project["id"]),
                 "sort": [{"expr": ident("created"), "dir": direction}], "limit": 1}
        rows = client.btql(query, query_source="bt_dagster_first_run").get("data") or []
        if not rows:
            return None
        days.append(parse_timestamp(rows[0]["created"]).date().isoformat())
    return days[0], days[1]


def _closed_keys(partitions_def: dg.PartitionsDefinition, first: str, last: str) -> list[str]:
    """The partition keys from ``first``'s window through ``last``'s, closed windows only."""
    today = datetime.now(UTC).date().isoformat()
    last = min(last, (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat())
    return [key for key in partitions_def.get_partition_keys() if first <= key[:10] <= last]


# The console shows warnings and errors only: the runs' events are in the UI, and one DEBUG line per
# partition and asset would bury the command's own summary.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _materialized(instance: dg.DagsterInstance, key: dg.AssetKey) -> bool:
    return instance.get_latest_materialization_event(key) is not None


def _partitions_of(defs: dg.Definitions, key: dg.AssetKey) -> dg.PartitionsDefinition | None:
    for asset in defs.assets:
        if isinstance(asset, dg.AssetsDefinition) and key in asset.keys:
            return asset.partitions_def
    return None


def materialize_demo(
    pipelines_dir: str | os.PathLike[str] | None, instance: dg.DagsterInstance, client: BraintrustClient
) -> list[DemoRun]:
    """One run per pipeline over its closed windows with logs, one per DatasetFile (see the module doc)."""
    directory = Path(pipelines_dir) if pipelines_dir is not None else default_pipelines_dir()
    found = discover_declarations(directory)
    defs = build_definitions(directory)
    translator = BraintrustTranslator()
    resources = {"braintrust": defs.resources["braintrust"]}
    runs: list[DemoRun] = []
    for spec in found.pipelines:
        group = translator.get_pipeline_prefix(spec)
        final = translator.get_asset_key(spec, "dataset_version")
        partitions_def = _partitions_of(defs, final)
        if partitions_def is None:  # not compiled (a broken declaration): the _errors group says why
            continue
        if _materialized(instance, final):
            runs.append(DemoRun(group, 0, True, "materialized before"))
            continue
        days = _log_days(client, spec.source.project_name) if spec.source.project_name else None
        keys = _closed_keys(partitions_def, *days) if days else []
        if not keys:
            runs.append(DemoRun(group, 0, True, "no closed window with logs"))
            continue
        result = dg.materialize(
            defs.assets, selection=dg.AssetSelection.groups(group), instance=instance, resources=resources,
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1],
                  FIRST_RUN_TAG: "true"},
            raise_on_error=False, run_config=_QUIET,
        )
        runs.append(DemoRun(group, len(keys), result.success))
    for spec in (d for d in found.declarations if isinstance(d, DatasetFileSpec)):
        group = translator.get_file_prefix(spec)
        final = dg.AssetKey([group, "dataset_version"])
        if not any(isinstance(a, dg.AssetsDefinition) and final in a.keys for a in defs.assets):
            continue  # not compiled (a broken declaration)
        if _materialized(instance, final):
            runs.append(DemoRun(group, 0, True, "materialized before"))
            continue
        result = dg.materialize(defs.assets, selection=dg.AssetSelection.assets(final), instance=instance,
                                resources=resources, tags={FIRST_RUN_TAG: "true"}, raise_on_error=False,
                                run_config=_QUIET)
        runs.append(DemoRun(group, 1, result.success))
    return runs
