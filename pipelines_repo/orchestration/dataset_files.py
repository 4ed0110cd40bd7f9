"""A ``DatasetFile`` declaration -> its asset, its check and its file sensor.

**Asset** ``<name>/dataset_version`` (unpartitioned, pool ``braintrust_api``, upstream the external
``files/<name>``): stores the declared schemas, then uploads the file through the datasets room
(:func:`datasets.file_sync.sync_dataset_file`, the same path as ``bt-dagster datasets upload``)
with the ``braintrust`` resource's client. Unchanged rows are not sent, so re-materializing an
unchanged file adds no dataset version. Metadata: dataset id, version, URL and the upload's
counts, plus ``file_sha256`` (what the sensor compares against). Rows failing an enforced schema
are quarantined to ``$DAGSTER_HOME/bt-sync/dataset_file_<name>/quarantine.jsonl``.

**Check** ``schema_valid`` (blocking, ERROR): quarantined rows <= ``max_invalid_rows``. Above it
the upload raises :class:`SchemaInvalidError` before writing anything; the asset then reports the
failed check and fails the step with the upload's message.

**Sensor** ``<name>_file_changed`` (default RUNNING, every 5 minutes, no network): its cursor is
the file's sha256. A tick whose sha256 differs from the cursor requests a run of the asset and
records an observation on ``files/<name>``; on the first tick (no cursor) it requests one only
when the latest materialization did not come from this content.
"""

# No `from __future__ import annotations`: Dagster reads the real annotations of the decorated
# functions' parameters.

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from ..datasets.declaration import DatasetFileSpec
from ..datasets.errors import SchemaInvalidError
from ..datasets.file_sync import sync_dataset_file
from ..datasets.upload import UploadResult
from ..engine.jsonl import sha256_file
from .assets import POOL
from .automation import SENSOR_INTERVAL_SECONDS
from .checks import build_schema_check_result, build_schema_check_spec
from .resource import BraintrustResource
from .staging import staging_root
from .translator import BraintrustTranslator

__all__ = ["META_SHA", "build_dataset_file_asset", "build_file_sensor", "quarantine_path_for"]

META_SHA = "file_sha256"


def quarantine_path_for(prefix: str) -> Path:
    """Where a Dagster run quarantines rows: under ``$DAGSTER_HOME``, never beside the user's file."""
    return staging_root() / f"dataset_file_{prefix}" / "quarantine.jsonl"


def _metadata(result: UploadResult, sha: str, url: str | None, plane: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dagster/row_count": result.rows,
        "dataset": result.dataset_name,
        "dataset_id": result.dataset_id or "",
        # Text: a version is an identifier (and 19 digits overflow GraphQL's Int).
        "dataset_version": result.dataset_version or "(empty dataset)",
        "rows": result.rows,
        "added": result.added,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "deleted": result.deleted,
        "quarantined": result.quarantined,
        META_SHA: sha,
        "plane": plane,
    }
    if url:
        meta["dataset_url"] = dg.MetadataValue.url(url)
    if result.quarantine_path:
        meta["quarantine_path"] = dg.MetadataValue.path(result.quarantine_path)
    return meta


def build_dataset_file_asset(spec: DatasetFileSpec, translator: BraintrustTranslator) -> dg.AssetsDefinition:
    prefix = translator.get_file_prefix(spec)
    key = translator.get_file_asset_key(spec)

    @dg.multi_asset(
        name=f"{prefix}__dataset_version",
        specs=[translator.get_file_asset_spec(spec)],
        check_specs=[build_schema_check_spec(key, spec.max_invalid_rows)],
        pool=POOL,
    )
    def dataset_file(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> Iterator[Any]:
        plane = braintrust.plane_description()
        client = braintrust.get_client()
        quarantine = quarantine_path_for(prefix)
        quarantine.unlink(missing_ok=True)  # a file left by an earlier run would mislead
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        sha = sha256_file(spec.path)
        context.log.info(f"{spec.name}: uploading {spec.path} ({spec.mode}) into {spec.target.dataset_name!r} on the {plane}")
        try:
            result = sync_dataset_file(client, spec, quarantine)
        except SchemaInvalidError as exc:
            yield build_schema_check_result(
                rows=None, quarantined=exc.invalid, max_invalid=spec.max_invalid_rows,
                quarantine_path=exc.quarantine_path,
            )
            raise dg.Failure(
                description=f"{spec.name}: {exc} Nothing was written.",
                metadata={"quarantined": exc.invalid, "quarantine_path": dg.MetadataValue.path(exc.quarantine_path or os.fspath(quarantine))},
                allow_retries=False,
            ) from None
        project = result.project_name or spec.target.project_name
        url = client.dataset_url(project, result.dataset_name or spec.target.dataset_name) if project else None
        context.log.info(
            f"{spec.name}: {result.rows} row(s): {result.added} added, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.deleted} deleted, {result.quarantined} quarantined; "
            f"dataset version {result.dataset_version}"
        )
        yield dg.MaterializeResult(
            asset_key=key,
            metadata=_metadata(result, sha, url, plane),
            data_version=dg.DataVersion(result.dataset_version) if result.dataset_version else None,
        )
        yield build_schema_check_result(
            rows=result.rows, quarantined=result.quarantined, max_invalid=spec.max_invalid_rows,
            quarantine_path=result.quarantine_path,
        )

    return dataset_file


def _materialized_sha(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event is not None else None
    value = materialization.metadata.get(META_SHA) if materialization is not None else None
    return getattr(value, "value", value)


def build_file_sensor(spec: DatasetFileSpec, translator: BraintrustTranslator) -> dg.SensorDefinition:
    key = translator.get_file_asset_key(spec)
    source_key = translator.get_file_source_key(spec)

    @dg.sensor(
        name=translator.get_file_sensor_name(spec),
        asset_selection=dg.AssetSelection.assets(key),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Uploads `{spec.path}` into its dataset when the file's content (sha256) changes.",
    )
    def file_changed(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        if not spec.path.is_file():
            return dg.SkipReason(f"{spec.path} does not exist; nothing to upload")
        sha = sha256_file(spec.path)
        if context.cursor == sha:
            return dg.SkipReason(f"{spec.path} unchanged (sha256 {sha[:12]})")
        if context.cursor is None and _materialized_sha(context.instance, key) == sha:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{key.to_user_string()} is already materialized from this content"),
                cursor=sha,
            )
        observation = dg.AssetObservation(
            asset_key=source_key, metadata={"sha256": sha, "bytes": spec.path.stat().st_size}
        )
        request = dg.RunRequest(asset_selection=[key], tags={"braintrust/trigger": "file_changed", "braintrust/file_sha256": sha})
        return dg.SensorResult(run_requests=[request], asset_events=[observation], cursor=sha)

    return file_changed
