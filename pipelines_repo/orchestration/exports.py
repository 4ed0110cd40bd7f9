"""An ``ExportAutomation`` declaration -> its asset, its destination check, its job and schedule.

**Asset** ``<name>/export`` (group ``<name>``, pool ``braintrust_api``): partitioned by export
window (hourly when ``interval_seconds <= 3600``, else daily; UTC; the first partition is
``start_from``), ``BackfillPolicy.single_run()`` so a backfill re-exports its windows in one run.
Each window runs :func:`export.window_export.export_window`: the rows whose ``_xact_id`` lies in
the window -> deterministic parts under ``date=YYYY-MM-DD/[hour=HH/]``, then the manifest, then
``_SUCCESS``. Per-window metadata: rows, files, bytes, lag (seconds from the window's end to the
export), manifest path, ``_xact_id`` range. Upstream: the external ``braintrust/<project>/logs``
(or the dataset's asset for a dataset export). Run config ``full_snapshot: true`` exports a
dataset whole as of each window's end.

**Check** ``export_destination_ok`` (not blocking): writes and deletes a probe object at the
destination (:func:`export.probe.probe_destination`); a failure names the cause and the fix.

**Schedule** ``<name>_export``: ``lag_minutes`` (default 10) after each window closes, exports the
window that just closed. RUNNING for ``status="active"``, STOPPED for ``"paused"``.
"""

# No `from __future__ import annotations`: Dagster reads the real annotations.

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from ..export.automation import ExportAutomationSpec
from ..export.errors import StorageError, redact
from ..export.probe import probe_destination
from ..export.window_export import WindowExport, export_window, resolve_ids
from .assets import POOL
from .partitions import window_for_key
from .resource import BraintrustResource
from .staging import staging_root
from .translator import KIND, sanitize_name

__all__ = [
    "DESTINATION_CHECK", "ExportRunConfig", "build_export_asset", "build_export_check", "build_export_schedule",
    "export_partitions_def", "export_prefix", "export_source_key", "last_exported", "state_path",
]

DESTINATION_CHECK = "export_destination_ok"


class ExportRunConfig(dg.Config):
    full_snapshot: bool = False  # dataset exports: the whole dataset as of each window's end


def export_prefix(spec: ExportAutomationSpec) -> str:
    return sanitize_name(spec.name)


def export_asset_key(spec: ExportAutomationSpec) -> dg.AssetKey:
    return dg.AssetKey([export_prefix(spec), "export"])


def export_source_key(spec: ExportAutomationSpec) -> dg.AssetKey:
    project = sanitize_name(spec.project)
    if spec.kind == "dataset":
        return dg.AssetKey(["braintrust", project, "datasets", sanitize_name(spec.export_definition.dataset_name or "")])
    return dg.AssetKey(["braintrust", project, "logs"])


def export_partitions_def(spec: ExportAutomationSpec) -> dg.TimeWindowPartitionsDefinition:
    first = spec.first_window
    if spec.hourly:
        return dg.HourlyPartitionsDefinition(start_date=first.replace(tzinfo=None), fmt="%Y-%m-%d-%H:%M", end_offset=0)
    return dg.DailyPartitionsDefinition(start_date=first.date().isoformat(), end_offset=0)


def state_path(spec: ExportAutomationSpec) -> Path:
    """``$DAGSTER_HOME/bt-sync/export_<name>/state.json``: the last exported window (for the CLI)."""
    return staging_root() / f"export_{export_prefix(spec)}" / "state.json"


def last_exported(spec: ExportAutomationSpec) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(spec).read_text())
    except (OSError, ValueError):
        return None


def _record_state(spec: ExportAutomationSpec, key: str, done: WindowExport) -> None:
    path = state_path(spec)
    previous = last_exported(spec) or {}
    if previous.get("window", "") > key:  # a backfill of an old window does not move it back
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"window": key, "manifest": redact(done.manifest_url), "rows": done.rows,
                                "exported_at": datetime.now(UTC).isoformat()}))


def _window_metadata(done: WindowExport, end: datetime, start: datetime) -> dict[str, Any]:
    assert done.xact is not None
    return {
        "dagster/row_count": done.rows,
        "rows": done.rows,
        "files": done.files,
        "bytes": done.bytes,
        "lag_seconds": round((datetime.now(UTC) - end).total_seconds(), 1),
        "manifest": redact(done.manifest_url),
        "folder": done.folder,
        "xact_after": str(done.xact.after),
        "xact_through": str(done.xact.through),
        "min_xact_id": done.min_xact_id or "(no rows)",
        "max_xact_id": done.max_xact_id or "(no rows)",
        "stale_parts_removed": done.stale_removed,
        "mode": "snapshot" if done.snapshot else "changes",
        "window_start": dg.MetadataValue.timestamp(start),
        "window_end": dg.MetadataValue.timestamp(end),
    }


def _describe(spec: ExportAutomationSpec) -> str:
    what = {"log_traces": "traces (one rolled-up row per trace)", "log_spans": "spans", "btql_query": "a BTQL query",
            "dataset": f"dataset {spec.export_definition.dataset_name!r}"}[spec.kind]
    file = f" Declared in `{spec.file}`." if spec.file else ""
    return (f"Export automation `{spec.name}`: {what} of project {spec.project!r} -> `{spec.export_path}` "
            f"({spec.format}), one {'hourly' if spec.hourly else 'daily'} window per partition by transaction time "
            f"(`_xact_id`): a row written after its window was exported lands in a later window.{file}")


def build_export_asset(spec: ExportAutomationSpec, partitions_def: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    prefix, key = export_prefix(spec), export_asset_key(spec)
    meta: dict[str, Any] = {"export_path": spec.export_path, "format": spec.format, "type": spec.kind,
                            "project": spec.project, "status": spec.status, "interval_seconds": spec.interval_seconds}
    if spec.file is not None:
        meta["braintrust/pipeline_file"] = dg.MetadataValue.path(os.fspath(spec.file))
    asset_spec = dg.AssetSpec(
        key=key, deps=[export_source_key(spec)], description=_describe(spec), group_name=prefix,
        code_version=spec.code_version, kinds={KIND}, tags={"braintrust/export": spec.kind}, metadata=meta,
        partitions_def=partitions_def,
    )

    @dg.multi_asset(name=f"{prefix}__export", specs=[asset_spec], partitions_def=partitions_def,
                    backfill_policy=dg.BackfillPolicy.single_run(), pool=POOL)
    def export_asset(context: dg.AssetExecutionContext, config: ExportRunConfig, braintrust: BraintrustResource) -> dg.MaterializeResult:
        client = braintrust.get_client()
        ids = resolve_ids(client, spec)
        keys = list(context.partition_keys)
        total = {"rows": 0, "files": 0, "bytes": 0}
        for pkey in keys:
            window = window_for_key(partitions_def, pkey)
            assert window.start is not None and window.end is not None
            done = export_window(client, spec, window.start, window.end, ids=ids, full_snapshot=config.full_snapshot)
            context.add_asset_metadata(_window_metadata(done, window.end, window.start), partition_key=pkey)
            _record_state(spec, pkey, done)
            for name in total:
                total[name] += getattr(done, name)
            context.log.info(f"{spec.name}: window {pkey}: {done.rows} row(s) in {done.files} file(s) -> {redact(done.manifest_url)}")
        return dg.MaterializeResult(metadata={"run_rows": total["rows"], "run_files": total["files"],
                                              "run_bytes": total["bytes"], "partitions_in_run": len(keys),
                                              "plane": braintrust.plane_description()})

    return export_asset


def build_export_check(spec: ExportAutomationSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=export_asset_key(spec), name=DESTINATION_CHECK, blocking=False,
                    description=f"Writes and deletes a probe object under `{spec.export_path}`.")
    def destination_ok(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        try:
            result = probe_destination(spec.resolved_path())
        except StorageError as exc:
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                       metadata={"cause": exc.cause, "kind": exc.kind, "fix": exc.fix or "",
                                                 "error": str(exc)})
        return dg.AssetCheckResult(passed=True, metadata={"probe": result.probe, "seconds": round(result.seconds, 3)})

    return destination_ok


def build_export_schedule(spec: ExportAutomationSpec, partitions_def: dg.TimeWindowPartitionsDefinition) -> tuple[Any, dg.ScheduleDefinition]:
    prefix = export_prefix(spec)
    job = dg.define_asset_job(name=f"{prefix}_export_job", selection=dg.AssetSelection.assets(export_asset_key(spec)),
                              tags={"braintrust/export": prefix})
    kwargs: dict[str, Any] = {"minute_of_hour": spec.lag_minutes}
    if not spec.hourly:
        kwargs["hour_of_day"] = 0
    schedule = dg.build_schedule_from_partitioned_job(
        job, name=f"{prefix}_export",
        description=(f"Exports each closed {'hourly' if spec.hourly else 'daily'} window of `{spec.name}` "
                     f"{spec.lag_minutes} minute(s) after it closes ({spec.status})."),
        default_status=dg.DefaultScheduleStatus.RUNNING if spec.status == "active" else dg.DefaultScheduleStatus.STOPPED,
        **kwargs,
    )
    return job, schedule


