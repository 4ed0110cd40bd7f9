"""Jobs, the nightly schedule and the late-data sensor of one pipeline.

**Schedule** ``<pipeline>_nightly`` (``BraintrustTranslator.get_schedule_name``; default RUNNING):
runs the pipeline's job for the last closed window, at ``schedule_hour:schedule_minute`` in the
pipeline's timezone (daily), at ``schedule_minute`` past every hour (hourly), or on Mondays at
``schedule_hour:schedule_minute`` (weekly). Built with ``build_schedule_from_partitioned_job``, so
the tick's partition is the window that ended last before the tick.

**Late-data sensor** ``<pipeline>_late_data`` (default RUNNING, every 5 minutes): spans can land
in (or be updated in) windows that were already pushed. Each tick scans the source project for
changes (:func:`engine.changes.scan_changes`: rows with ``_xact_id > cursor`` and ``created``
within the lookback, ``lookback_days`` back from now rounded down to a window start, at most
``max_pages`` pages of ``page_size`` rows per tick). The changed rows' ``created`` map to
partitions; the sensor requests a run of exactly those
partitions whose ``dataset_version`` is already materialized and that lie in the lookback, with
``run_key = "<partition>:<cursor>"``, and records an ``AssetObservation`` on
``braintrust/<project>/logs`` per changed partition. The cursor is the highest ``_xact_id`` fully
processed (when a tick stops inside a transaction, the rest of it is read again next tick).
Nothing changed -> nothing requested. The first tick (no cursor) only initialises the cursor to
the source's current max ``_xact_id``: it requests nothing (older windows are the schedule's and
backfills' business). In trace scope the pipeline's filter is not applied (a new span can change
any trace's transform output) and a span maps to the window holding its own ``created``.
"""


from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from ..engine.btql import max_xact, parse_xact, project_logs_from
from ..engine.changes import DEFAULT_MAX_PAGES, LATE_DATA_QUERY_SOURCE, scan_changes
from ..engine.pull import SourceProjectNotFoundError, resolve_source
from ..engine.spec import PipelineSpec
from .partitions import lookback_start, partition_key_for_time
from .resource import BraintrustResource
from .translator import BraintrustTranslator

__all__ = ["build_job", "build_late_data_sensor", "build_schedule"]

SENSOR_INTERVAL_SECONDS = 300


def build_job(spec: PipelineSpec, translator: BraintrustTranslator) -> UnresolvedAssetJobDefinition:
    keys = [translator.get_asset_key(spec, stage) for stage in ("pulled_refs", "transformed_rows", "dataset_version")]
    return dg.define_asset_job(
        name=translator.get_job_name(spec),
        selection=dg.AssetSelection.assets(*keys),
        description=f"Pull, transform and push pipeline `{spec.name}` for the selected window(s).",
        tags={"braintrust/pipeline": translator.get_pipeline_prefix(spec)},
    )


def build_schedule(
    spec: PipelineSpec, translator: BraintrustTranslator, job: UnresolvedAssetJobDefinition
) -> dg.ScheduleDefinition:
    opts = spec.options
    kwargs: dict[str, Any] = {"minute_of_hour": opts.schedule_minute}
    if opts.partitions in ("daily", "weekly"):
        kwargs["hour_of_day"] = opts.schedule_hour
    if opts.partitions == "weekly":
        kwargs["day_of_week"] = 1
    when = {
        "hourly": f"at minute {opts.schedule_minute} of every hour",
        "daily": f"daily at {opts.schedule_hour:02d}:{opts.schedule_minute:02d} {opts.timezone}",
        "weekly": f"on Mondays at {opts.schedule_hour:02d}:{opts.schedule_minute:02d} {opts.timezone}",
    }[opts.partitions]
    return dg.build_schedule_from_partitioned_job(
        job,
        name=translator.get_schedule_name(spec),
        description=f"Runs `{spec.name}` for the last closed {opts.partitions} window, {when}.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        **kwargs,
    )


# -- the sensor --------------------------------------------------------------------------------


def build_late_data_sensor(
    spec: PipelineSpec,
    translator: BraintrustTranslator,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    job: UnresolvedAssetJobDefinition,
    *,
    source_partitioned: bool,
    max_pages: int = DEFAULT_MAX_PAGES,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dg.SensorDefinition:
    source_key = translator.get_source(spec).key
    pushed_key = translator.get_asset_key(spec, "dataset_version")
    opts = spec.options

    @dg.sensor(
        name=translator.get_sensor_name(spec),
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Re-runs already pushed windows of `{spec.name}` from the last {opts.lookback_days} day(s) when "
            "spans were added or changed in them (by `_xact_id`); the first tick only sets the cursor."
        ),
    )
    def late_data(context: dg.SensorEvaluationContext, braintrust: BraintrustResource) -> dg.SensorResult | dg.SkipReason:
        client = braintrust.get_client()
        try:
            source = resolve_source(client, spec.source)
        except SourceProjectNotFoundError as exc:
            return dg.SkipReason(f"{exc} (plane: {braintrust.plane_description()})")
        after = parse_xact(context.cursor)
        if after is None:  # first tick (or an unreadable cursor): start from "now"
            current = max_xact(client, project_logs_from(source.project_id), query_source=LATE_DATA_QUERY_SOURCE)
            if current is None:
                return dg.SkipReason(f"source project {source.project_name!r} has no logs yet; cursor not set")
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"initialised the cursor at _xact_id {current}; nothing requested on the first tick"),
                cursor=str(current),
            )
        moment = now()
        since = lookback_start(opts, partitions_def, moment)
        scan = scan_changes(
            client, source, after=after, since=since, max_pages=max_pages, page_size=opts.page_size
        )
        if scan.split_transaction:
            context.log.warning(
                f"transaction {scan.cursor} has more rows than one tick reads ({max_pages} pages); "
                "its unread rows are not mapped to windows"
            )
        changed: dict[str, int] = {}
        for created in scan.times:
            key = partition_key_for_time(partitions_def, created, moment)
            if key is not None and partitions_def.time_window_for_partition_key(key).start >= since:
                changed[key] = changed.get(key, 0) + 1
        cursor = str(scan.cursor)
        if not changed:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"no spans added or changed in the lookback since _xact_id {after}"
                    + ("" if scan.exhausted else " (backlog continues next tick)")
                ),
                cursor=cursor,
            )
        materialized = context.instance.get_materialized_partitions(pushed_key)
        requests = [
            dg.RunRequest(
                partition_key=key,
                run_key=f"{key}:{cursor}",
                tags={"braintrust/trigger": "late_data", "braintrust/xact_cursor": cursor},
            )
            for key in sorted(changed)
            if key in materialized
        ]
        observations = [
            dg.AssetObservation(
                asset_key=source_key,
                partition=key if source_partitioned else None,
                metadata={
                    "pipeline": spec.name,
                    "partition": key,
                    "changed_spans": count,
                    "xact_cursor": int(cursor),
                    "rerun_requested": key in materialized,
                },
            )
            for key, count in sorted(changed.items())
        ]
        skipped = sorted(set(changed) - set(materialized))
        if skipped:
            context.log.info(f"changed but never pushed (left to the schedule/backfills): {', '.join(skipped)}")
        return dg.SensorResult(
            run_requests=requests,
            asset_events=observations,
            cursor=cursor,
            skip_reason=None if requests else dg.SkipReason(f"changes only in windows never pushed: {', '.join(skipped)}"),
        )

    return late_data

