"""A ``RetentionPolicy`` declaration -> its asset, its checks and its daily schedule.

**Asset** ``<name>/retention`` (unpartitioned, group ``retention``, pool ``braintrust_api``): one
run handles every expired day. ``apply="delete"``: :func:`retention.apply.apply_policy` with the
guard read from this Dagster instance (``retention_guard.InstanceHarvest`` over every asset of the
code location) and the policy re-read from its file before each day. ``apply="braintrust"``:
:func:`retention.automation.sync_policy` (create/update the project's retention automation), and
the guard's view of what Braintrust will delete. Metadata: cutoff, rows deleted per day, days
held back with reasons, archive manifests, purge results, the deleted experiments
(``object_type="experiment"``: each deleted whole) (or the automation sync). A policy whose
project does not exist fails the run, naming it.

**Checks** ``harvested_before_expiry`` (blocking, ERROR): fails while days are held back (not yet
materialized by every pipeline, or exported by every export, reading the project); a later run
deletes them once harvested. ``automation_in_sync`` (``apply="braintrust"`` only): fails on drift.

**Schedule** ``<name>_daily`` (RUNNING, 02:30 UTC).
"""

# No `from __future__ import annotations`: Dagster reads the real annotations of the decorated
# functions' parameters.

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dagster as dg
from dagster_shared.check import CheckError
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..engine.loader import PipelineLoadError, load_declarations
from ..engine.window import format_timestamp
from ..retention.apply import RetentionError, RunReport, apply_policy, preview
from ..retention.automation import sync_policy
from ..retention.guard import HarvestSource
from ..retention.plan import cutoff_for
from ..retention.spec import RetentionPolicySpec
from .assets import POOL
from .resource import BraintrustResource
from .retention_guard import InstanceHarvest
from .translator import KIND, sanitize_name

__all__ = [
    "CHECK_HARVESTED", "CHECK_IN_SYNC", "RETENTION_GROUP", "build_retention", "reload_policy", "retention_key",
    "retention_prefix",
]

RETENTION_GROUP = "retention"
CHECK_HARVESTED = "harvested_before_expiry"
CHECK_IN_SYNC = "automation_in_sync"


def retention_prefix(policy: RetentionPolicySpec) -> str:
    return sanitize_name(policy.name)


def retention_key(policy: RetentionPolicySpec) -> dg.AssetKey:
    return dg.AssetKey([retention_prefix(policy), "retention"])


def reload_policy(policy: RetentionPolicySpec) -> RetentionPolicySpec | None:
    """The policy as its file declares it now (None: removed, renamed, or the file is broken)."""
    if policy.file is None:
        return policy
    try:
        loaded = load_declarations(policy.file)
    except PipelineLoadError:
        return None
    return next((d for d in loaded.declarations if isinstance(d, RetentionPolicySpec) and d.name == policy.name), None)


def _held_text(held: dict[str, dict[str, list[str]]]) -> str:
    return "\n".join(f"- {label} {day}: {'; '.join(reasons)}" for label, days in held.items() for day, reasons in days.items())


def _delete_metadata(report: RunReport) -> dict[str, Any]:
    deleted = {t.target.label: t.deleted for t in report.targets if t.deleted}
    return {
        "cutoff": format_timestamp(report.cutoff),
        "deleted_rows": report.deleted,
        "deleted_per_day": dg.MetadataValue.json(deleted),
        "deleted_experiments": dg.MetadataValue.json(report.deleted_experiments),
        "held_back_days": dg.MetadataValue.json(report.held_back),
        "archive_manifests": dg.MetadataValue.json([m for t in report.targets for m in t.manifests]),
        "purge": dg.MetadataValue.json([t.purge for t in report.targets if t.purge]),
        "targets": len(report.targets),
        "forced": report.forced,
        "stopped": report.stopped or "",
    }


def _harvest_check(held: dict[str, dict[str, list[str]]], note: str = "") -> dg.AssetCheckResult:
    days = sum(len(d) for d in held.values())
    text = f"{days} expired day(s) held back: not harvested yet{note}\n{_held_text(held)}" if days else "every expired day was harvested"
    return dg.AssetCheckResult(
        check_name=CHECK_HARVESTED, passed=days == 0, severity=dg.AssetCheckSeverity.ERROR, description=text,
        metadata={"held_back_days": days, "held_back": dg.MetadataValue.json(held)},
    )


def _run_delete(context: dg.AssetExecutionContext, policy: RetentionPolicySpec, client: Any, harvest: HarvestSource) -> Iterator[Any]:
    report = apply_policy(client, policy, harvest, reload=lambda: reload_policy(policy), log=context.log.info)
    yield dg.MaterializeResult(asset_key=retention_key(policy), metadata=_delete_metadata(report))
    yield _harvest_check(report.held_back, "; a later run deletes them once harvested")


def _run_braintrust(context: dg.AssetExecutionContext, policy: RetentionPolicySpec, client: Any, harvest: HarvestSource) -> Iterator[Any]:
    synced = sync_policy(client, policy)
    plans = preview(client, policy, harvest)
    held = {p.target.label: {d.day.isoformat(): d.held_back for d in p.held} for p in plans if p.held}
    drift = [s for s in synced if s.action == "drift"]
    for s in synced:
        context.log.info(f"{s.project_name}: retention automation {s.action} ({s.automation_id})")
    yield dg.MaterializeResult(
        asset_key=retention_key(policy),
        metadata={
            "cutoff": format_timestamp(cutoff_for(policy.retention_days)),
            "automations": dg.MetadataValue.json([s.to_dict() for s in synced]),
            "drift": len(drift),
            "held_back_days": dg.MetadataValue.json(held),
        },
    )
    yield _harvest_check(held, "; Braintrust deletes them anyway (apply='braintrust' cannot hold days back)")
    text = "\n".join(f"- {s.project_name}: server has {json.dumps(s.server)}, we last wrote {json.dumps(s.last_written)}" for s in drift)
    yield dg.AssetCheckResult(
        check_name=CHECK_IN_SYNC, passed=not drift, severity=dg.AssetCheckSeverity.ERROR,
        description=f"changed in Braintrust since we wrote it:\n{text}" if drift else "automations match the declaration",
        metadata={"drift": len(drift)},
    )


def _description(policy: RetentionPolicySpec) -> str:
    where = "every project (new ones too)" if policy.all_projects else f"project {policy.project!r}"
    if policy.apply != "delete":
        how = "keeps Braintrust's retention automation in sync"
    elif policy.object_type == "experiment":
        how = "deletes each whole experiment created before the cutoff (`DELETE /v1/experiment/{id}`)"
    else:
        how = "deletes through the API (`_object_delete`)"
    extra = (" Archives each day first to `" + policy.archive.path + "`.") if policy.archive else ""
    guard = (" Days not yet harvested by every pipeline/export reading the project are held back."
             if policy.guard and policy.object_type == "project_logs" else "")
    return f"Retention `{policy.name}`: {policy.object_type} of {where} older than {policy.retention_days} day(s); {how}.{extra}{guard}"


def _code_location_assets(context: dg.AssetExecutionContext, fallback: Callable[[], Iterable[Any]]) -> Iterable[Any]:
    """Every asset of the code location (the readers may be compiled after this policy, e.g. exports);
    ``dg.materialize`` has no repository, so the compiler's list stands in."""
    try:
        return context.repository_def.assets_defs_by_key.values()
    except CheckError:
        return list(fallback())


def build_retention_asset(policy: RetentionPolicySpec, assets: Callable[[], Iterable[Any]]) -> dg.AssetsDefinition:
    key = retention_key(policy)
    checks = [dg.AssetCheckSpec(CHECK_HARVESTED, asset=key, blocking=True, description="Every expired day was harvested before deletion.")]
    if policy.apply == "braintrust":
        checks.append(dg.AssetCheckSpec(CHECK_IN_SYNC, asset=key, description="The Braintrust automation is what we last wrote."))
    spec = dg.AssetSpec(
        key=key, group_name=RETENTION_GROUP, kinds={KIND}, description=_description(policy),
        tags={"braintrust/retention": policy.apply},
        metadata={"project": policy.project, "object_type": policy.object_type, "retention_days": policy.retention_days,
                  "apply": policy.apply, "guard": policy.guard, "policy_file": str(policy.file or "")},
    )

    @dg.multi_asset(name=f"{retention_prefix(policy)}__retention", specs=[spec], check_specs=checks, pool=POOL)
    def retention(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> Iterator[Any]:
        client = braintrust.get_client()
        harvest = InstanceHarvest(context.instance, _code_location_assets(context, assets))
        run = _run_delete if policy.apply == "delete" else _run_braintrust
        try:
            yield from run(context, policy, client, harvest)
        except RetentionError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    return retention


def build_retention(
    policy: RetentionPolicySpec, assets: Callable[[], Iterable[Any]] = tuple
) -> tuple[dg.AssetsDefinition, UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """The asset, its job and the daily schedule of one policy; ``assets()`` lists the code
    location's assets when the run has no repository (the guard finds the readers there)."""
    asset = build_retention_asset(policy, assets)
    prefix = retention_prefix(policy)
    job = dg.define_asset_job(f"{prefix}_retention_job", selection=dg.AssetSelection.assets(retention_key(policy)),
                              tags={"braintrust/retention": prefix})
    schedule = dg.ScheduleDefinition(
        name=f"{prefix}_daily", cron_schedule="30 2 * * *", execution_timezone="UTC", job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING, description=f"Applies retention `{policy.name}` daily at 02:30 UTC.",
    )
    return asset, job, schedule
