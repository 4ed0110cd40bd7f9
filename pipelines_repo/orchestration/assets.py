"""The three partitioned assets of one pipeline, thin over the engine stages (via ``staging``).

Every stage:

- is time-partitioned (``partitions.partitions_def_for``) with ``BackfillPolicy.single_run()``,
  so a backfill over N windows is ONE run; it reads ``context.partition_keys`` (one key, or the
  whole range) and never ``context.partition_key``;
- runs in the ``braintrust_api`` concurrency pool (caps concurrent API-bound steps);
- writes its per-partition files in bt-sync layout under ``$DAGSTER_HOME/bt-sync``, in the run's
  own directory per partition (``staging.run_stage``: concurrent runs of one partition never share
  files), and returns a ``MaterializeResult`` without a value (no IO manager, nothing pickled);
  the next stage reads the upstream partition files;
- attaches per-partition metadata with ``context.add_asset_metadata(..., partition_key=k)``,
  so each window of a range run gets its own counts; run-wide values (sweep pages, API
  requests, plane) go on the ``MaterializeResult`` and are copied to every partition.
"""

# No `from __future__ import annotations` here: Dagster reads the real annotations of the
# `context` and resource parameters when the decorators run.

import json
import os
import shlex
import time
from collections.abc import Sequence
from typing import Any

import dagster as dg

from ..engine.artifacts import manifest_source_org
from ..engine.jsonl import read_jsonl
from ..engine.push import PushResult, resolve_target
from ..engine.spec import PipelineSpec
from ..engine.stages import TransformStageResult
from ..engine.window import TimeWindow
from .checks import build_check_results, build_check_specs, build_schema_result, inspect_rows, partition_rows
from .partitions import windows_for_keys
from .resource import BraintrustResource
from .staging import (
    PartitionStage,
    prune_runs,
    pull_partitions_staged,
    push_partitions,
    run_ids_beside,
    run_stage,
    screen_partitions,
    transform_partition,
)
from .translator import BraintrustTranslator

__all__ = ["POOL", "build_pipeline_assets"]

POOL = "braintrust_api"
PREVIEW_ROWS = 5
_PREVIEW_CHARS = 160


def _window_meta(window: TimeWindow) -> dict[str, Any]:
    assert window.start is not None and window.end is not None
    return {
        "window_start": dg.MetadataValue.timestamp(window.start),
        "window_end": dg.MetadataValue.timestamp(window.end),
    }


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "\u2026"


def _preview(path: os.PathLike[str] | str) -> dg.TableMetadataValue:
    records = []
    for row in read_jsonl(path):
        if len(records) >= PREVIEW_ROWS:
            break
        if not isinstance(row, dict):
            continue
        records.append(
            dg.TableRecord(
                {
                    "id": _short(row.get("id")),
                    "input": _short(row.get("input")),
                    "expected": _short(row.get("expected")),
                    "tags": _short(row.get("tags")),
                }
            )
        )
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, "string") for name in ("id", "input", "expected", "tags")]
    )
    return dg.MetadataValue.table(records, schema)


def _version_value(version: str | None) -> str:
    """The dataset version (`_xact_id`) as text: an identifier to pin evals to, not a quantity
    (and 19 digits overflow GraphQL's 32-bit Int, so the UI and API would show nothing)."""
    return version if version is not None else "(empty dataset)"


def _change_meta(result: PushResult, dataset: str, project: str) -> dict[str, Any]:
    """What one partition's push changed, and the command that shows it row by row."""
    meta: dict[str, Any] = {
        "added": result.added,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "kept_curated": result.kept_curated,
        "quarantined": result.quarantined,
    }
    if result.quarantine_path:
        meta["quarantine_jsonl"] = dg.MetadataValue.path(result.quarantine_path)
    if result.previous_version and result.version and result.previous_version != result.version:
        meta["diff"] = (
            f"bt-dagster datasets diff {shlex.quote(dataset)} --project {shlex.quote(project)} "
            f"--from {result.previous_version} --to {result.version}"
        )
    return meta


def _range_label(keys: Sequence[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]} ({len(keys)} partitions)"


def _transformed_meta(result: TransformStageResult, window: TimeWindow) -> dict[str, Any]:
    """One partition's ``transformed_rows`` metadata."""
    meta: dict[str, Any] = {
        "dagster/row_count": result.stats.rows,
        "candidates": result.stats.candidates,
        "rows": result.stats.rows,
        "skipped": result.stats.skipped,
        "error_rate": float(result.stats.error_rate),
        "transformed_jsonl": dg.MetadataValue.path(os.fspath(result.out)),
        "preview": _preview(result.out),
        **_window_meta(window),
    }
    if result.stats.skipped:
        meta["errors_jsonl"] = dg.MetadataValue.path(os.fspath(result.errors_path))
    return meta


def _schema_check(context: dg.AssetExecutionContext, client: Any, spec: PipelineSpec, stages: list) -> dg.AssetCheckResult:
    """``schema_valid`` from the push's own screen of each partition's rows (the target is
    got-or-created here, as the push would do next); per-partition counts go to the metadata."""
    target = resolve_target(client, spec.target, default_org=manifest_source_org(stages[0].transform_manifest()))
    screens = screen_partitions(stages, target)
    for stage, screened in zip(stages, screens or [], strict=False):
        context.add_asset_metadata({"quarantined": screened.count}, partition_key=stage.key)
    return build_schema_result([(stage.key, s) for stage, s in zip(stages, screens)] if screens is not None else None, spec)


_FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
# A run directory whose run the instance does not know (wiped, another instance) goes after this long.
_ORPHAN_SECONDS = 24 * 3600


def _prune_finished_runs(context: dg.AssetExecutionContext, stages: list[PartitionStage]) -> None:
    """Remove the staging of other runs of these partitions once they have finished (this run's
    directory stays: the newest complete one, which a later run adopts)."""
    ids = run_ids_beside(stages)
    if not ids:
        return
    records = context.instance.get_run_records(filters=dg.RunsFilter(run_ids=sorted(ids)))
    known = {r.dagster_run.run_id: r.dagster_run.status for r in records}
    now = time.time()
    dirs = {d.name: d for stage in stages for d in stage.dir.parent.iterdir() if d.name in ids}
    finished = {
        run_id for run_id in ids
        if known.get(run_id) in _FINISHED or (run_id not in known and now - dirs[run_id].stat().st_mtime > _ORPHAN_SECONDS)
    }
    removed = prune_runs(stages, finished)
    if removed:
        context.log.debug(f"removed {removed} finished run staging directorie(s)")


def build_pipeline_assets(
    spec: PipelineSpec,
    translator: BraintrustTranslator,
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> list[dg.AssetsDefinition]:
    """``<pipeline>/pulled_refs -> transformed_rows -> dataset_version`` for one pipeline."""
    prefix = translator.get_pipeline_prefix(spec)
    source_key = translator.get_source(spec).key
    keys = {stage: translator.get_asset_key(spec, stage) for stage in ("pulled_refs", "transformed_rows", "dataset_version")}

    def stage_asset(stage: str, dep: dg.AssetKey, **options: Any) -> Any:
        """The decorator every stage shares (see the module doc); ``options`` add e.g. checks."""
        return dg.multi_asset(
            name=f"{prefix}__{stage}",
            specs=[
                translator.get_asset_spec(spec, stage, partitions_def=partitions_def).replace_attributes(deps=[dep])  # type: ignore[arg-type]
            ],
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
            pool=POOL,
            **options,
        )

    def windows(context: dg.AssetExecutionContext) -> dict[str, TimeWindow]:
        return windows_for_keys(partitions_def, context.partition_keys)

    # -- pull ---------------------------------------------------------------------------------
    @stage_asset("pulled_refs", source_key)
    def pulled_refs(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> dg.MaterializeResult:
        wins = windows(context)
        plane = braintrust.plane_description()
        context.log.info(f"{spec.name}: one discovery sweep over {_range_label(list(wins))} on the {plane}")
        sweep = pull_partitions_staged(braintrust.get_client(), spec, wins, run_id=context.run.run_id)
        for key, part in sweep.partitions.items():
            context.add_asset_metadata(
                {
                    "dagster/row_count": part.refs,
                    "refs": part.refs,
                    "pulled_jsonl": dg.MetadataValue.path(os.fspath(part.stage.pulled)),
                    **_window_meta(part.stage.window),
                },
                partition_key=key,
            )
        if sweep.unassigned:
            context.log.warning(f"{sweep.unassigned} ref(s) fell in no partition of the run and were not staged")
        context.log.info(
            f"{spec.name}: {sweep.stats.refs} refs in {sweep.stats.pages} page(s), {sweep.stats.requests} API request(s)"
        )
        return dg.MaterializeResult(
            metadata={
                "pages": sweep.stats.pages,
                "api_requests": sweep.stats.requests,
                "sweep_refs": sweep.stats.refs,
                "partitions_in_run": len(wins),
                "source_project_id": sweep.source.project_id,
                "plane": plane,
            }
        )

    # -- transform ----------------------------------------------------------------------------
    @stage_asset("transformed_rows", keys["pulled_refs"], check_specs=build_check_specs(keys["transformed_rows"], spec))
    def transformed_rows(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> dg.MaterializeResult:
        wins = windows(context)
        plane = braintrust.plane_description()
        context.log.info(f"{spec.name}: transforming {_range_label(list(wins))} on the {plane}")
        client = braintrust.get_client()
        parts, stages = [], []
        totals = {"candidates": 0, "rows": 0, "skipped": 0, "requests": 0}
        for key, window in wins.items():
            stage = run_stage(spec, key, window, context.run.run_id, "pull")
            stages.append(stage)
            result = transform_partition(client, spec, stage)
            stats = result.summary()
            parts.append(partition_rows(key, result.out, stats, result.errors_path))
            for name in ("candidates", "rows", "skipped", "requests"):
                totals[name] += int(stats.get(name) or 0)
            context.add_asset_metadata(_transformed_meta(result, window), partition_key=key)
        checks = [*build_check_results(inspect_rows(parts), spec), _schema_check(context, client, spec, stages)]
        failed = [c.check_name for c in checks if not c.passed]
        if failed:
            context.log.error(f"{spec.name}: check(s) {', '.join(failed)} failed; the push is blocked")
        return dg.MaterializeResult(
            metadata={
                "api_requests": totals["requests"],
                "run_candidates": totals["candidates"],
                "run_rows": totals["rows"],
                "run_skipped": totals["skipped"],
                "partitions_in_run": len(wins),
                "plane": plane,
            },
            check_results=checks,
        )

    # -- push ---------------------------------------------------------------------------------
    @stage_asset("dataset_version", keys["transformed_rows"])
    def dataset_version(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> dg.MaterializeResult:
        wins = windows(context)
        plane = braintrust.plane_description()
        client = braintrust.get_client()
        stages = [run_stage(spec, key, window, context.run.run_id, "transform") for key, window in wins.items()]
        default_org = manifest_source_org(stages[0].transform_manifest())
        target = resolve_target(client, spec.target, default_org=default_org)
        context.log.info(
            f"{spec.name}: pushing {_range_label(list(wins))} into dataset {target.dataset_name!r} "
            f"(project {target.project_name!r}) on the {plane}"
        )
        pushed = push_partitions(client, spec, stages, target)
        for stage, result in zip(stages, pushed.files, strict=True):
            context.add_asset_metadata(
                {
                    "dagster/row_count": result.rows_pushed,
                    "rows": result.rows_pushed,
                    "batches": result.batches,
                    "dataset_version": _version_value(result.version),
                    **_change_meta(result, target.dataset_name, target.project_name),
                    **_window_meta(stage.window),
                },
                partition_key=stage.key,
            )
        _prune_finished_runs(context, stages)
        version, url = pushed.version, client.dataset_url(target.project_name, target.dataset_name)
        context.log.info(
            f"{spec.name}: pushed {pushed.rows_pushed} row(s) in {pushed.batches} batch(es); dataset version {version}"
        )
        return dg.MaterializeResult(
            metadata={
                "dataset_url": dg.MetadataValue.url(url),
                "dataset": target.dataset_name,
                "dataset_id": target.dataset_id,
                "run_rows_pushed": pushed.rows_pushed,
                "run_batches": pushed.batches,
                "run_added": pushed.changes.added,
                "run_updated": pushed.changes.updated,
                "run_unchanged": pushed.changes.unchanged,
                "run_kept_curated": pushed.changes.kept,
                "run_quarantined": pushed.quarantined,
                "api_requests": pushed.requests,
                "dataset_version_after_run": _version_value(version),
                "partitions_in_run": len(wins),
                "plane": plane,
            },
            data_version=dg.DataVersion(version) if version else None,
        )

    return [pulled_refs, transformed_rows, dataset_version]

