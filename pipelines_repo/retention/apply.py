"""Apply a policy with ``apply="delete"``: per target, day by day (oldest first), archive then delete.

    targets = resolve_targets(client, policy)                 # RetentionError for an unknown project
    plans = preview(client, policy, harvest, force=False)     # what a run would delete and hold back
    report = apply_policy(client, policy, harvest, reload=..., force=False)

Deletes are ``_object_delete`` tombstones through ``/logs3`` in batches of ``batch_size`` ids (the
ids of the day's remaining rows, queried again for each batch), so any plan and the local plane
accept them, and a run killed mid-delete simply finds the rest next time: re-running converges to
the state one run reaches. Right before each day, the policy is re-read (``reload``; a policy that
was removed, switched to ``braintrust`` or now keeps that day stops or skips) and the guard is
asked again. Then, on the local plane, the deleted rows' stored history is purged and the file
shrinks (``POST /local/.../purge``); Braintrust purges on its side.

``object_type="experiment"``: each experiment created before the cutoff is a target of its own,
archived whole (if the policy archives) and deleted whole through ``DELETE /v1/experiment/{id}``,
then, on the local plane, its rows are purged (``POST /local/experiment/{id}/purge``). The guard
does not apply: no pipeline or export reads experiments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..client import BraintrustClient, BraintrustError
from ..engine.btql import ident
from ..engine.errors import PipelineError
from ..engine.window import format_timestamp
from .archive import archive_day
from .guard import NO_GUARD, HarvestSource, hold_reasons
from .plan import QUERY_SOURCE, DayPlan, Target, TargetPlan, cutoff_for, day_window, experiment_expired, object_from, plan_target
from .spec import RetentionPolicySpec

__all__ = ["RetentionError", "RunReport", "apply_policy", "delete_day", "preview", "resolve_projects", "resolve_targets"]


class RetentionError(PipelineError, RuntimeError):
    """A policy cannot run (e.g. its project does not exist)."""


def resolve_projects(client: BraintrustClient, policy: RetentionPolicySpec) -> list[dict[str, Any]]:
    """The projects the policy covers now: ``"*"`` lists every project at run time (new ones too)."""
    if policy.all_projects:
        return client.list_projects()
    project = client.get_project(name=policy.project)
    if project is None:
        raise RetentionError(
            f"retention policy {policy.name!r}: project {policy.project!r} does not exist on {client.describe()}",
            path=policy.file, fix="fix project= in the RetentionPolicy (a project name, or '*' for every project)",
        )
    return [project]


def resolve_targets(client: BraintrustClient, policy: RetentionPolicySpec) -> list[Target]:
    """The objects the policy deletes from: each project's logs, each dataset, or each experiment of each project."""
    targets: list[Target] = []
    for project in resolve_projects(client, policy):
        pid, pname = project["id"], project.get("name") or project["id"]
        if policy.object_type == "project_logs":
            targets.append(Target("project_logs", pid, pid, pname, pname))
        elif policy.object_type == "experiment":
            targets += [Target("experiment", e["id"], pid, pname, f"{pname} / {e.get('name')}", created=e.get("created"))
                        for e in reversed(client.list_experiments(pid))]  # oldest first, like days
        else:
            targets += [Target("dataset", d["id"], pid, pname, f"{pname} / {d.get('name')}") for d in client.list_datasets(pid)]
    return targets


def preview(
    client: BraintrustClient, policy: RetentionPolicySpec, harvest: HarvestSource = NO_GUARD,
    *, force: bool = False, now: datetime | None = None,
) -> list[TargetPlan]:
    plans = [plan_target(client, policy, t, harvest, now=now, force=force) for t in resolve_targets(client, policy)]
    # A kept experiment has nothing to show; listing every experiment of a project would bury the expired ones.
    return [p for p in plans if p.days or p.target.object_type != "experiment"]


def _tombstone(target: Target, row_id: str) -> dict[str, Any]:
    if target.object_type == "project_logs":
        return {"id": row_id, "project_id": target.object_id, "log_id": "g", "_object_delete": True}
    return {"id": row_id, "dataset_id": target.object_id, "_object_delete": True}


def delete_day(
    client: BraintrustClient, target: Target, day: date, cutoff: datetime, *, batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Tombstone every row of ``day`` created before ``cutoff``; returns how many were deleted."""
    query = {
        "select": [{"alias": "id", "expr": ident("id")}],
        "from": object_from(target),
        "filter": day_window(day, cutoff).filter_part(),
        "sort": [{"expr": ident("_pagination_key"), "dir": "asc"}],
    }
    # One forward walk, deleting each page as it arrives: the cursor (by _pagination_key) is not
    # disturbed by the tombstones, and a service that lists deleted rows for a moment after a
    # write cannot make the walk repeat a page. A killed run leaves the rest for the next run.
    deleted = 0
    for page in client.iter_btql_pages(query, page_size=batch_size, query_source=QUERY_SOURCE):
        client.insert_rows(_tombstone(target, str(row["id"])) for row in page)
        deleted += len(page)
        if on_batch is not None:
            on_batch(deleted)
    return deleted


@dataclass
class TargetReport:
    target: Target
    cutoff: datetime
    deleted: dict[str, int] = field(default_factory=dict)  # day -> rows deleted
    held_back: dict[str, list[str]] = field(default_factory=dict)  # day -> reasons
    skipped: dict[str, str] = field(default_factory=dict)  # day -> why (policy changed)
    manifests: list[str] = field(default_factory=list)
    purge: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            "object_type": t.object_type, "object_id": t.object_id, "project_id": t.project_id, "label": t.label,
            "cutoff": format_timestamp(self.cutoff), "deleted": self.deleted, "held_back": self.held_back,
            "skipped": self.skipped, "manifests": self.manifests, "purge": self.purge,
        }


@dataclass
class RunReport:
    policy: str
    cutoff: datetime
    forced: bool
    targets: list[TargetReport] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped early (policy removed or changed mode)

    @property
    def deleted(self) -> int:
        return sum(sum(t.deleted.values()) for t in self.targets)

    @property
    def deleted_experiments(self) -> list[dict[str, Any]]:
        return [{"id": t.target.object_id, "label": t.target.label, "created": t.target.created,
                 "rows": sum(t.deleted.values())} for t in self.targets if t.target.object_type == "experiment" and t.deleted]

    @property
    def held_back(self) -> dict[str, dict[str, list[str]]]:
        return {t.target.label: t.held_back for t in self.targets if t.held_back}

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "cutoff": format_timestamp(self.cutoff), "forced": self.forced,
                "deleted": self.deleted, "deleted_experiments": self.deleted_experiments, "stopped": self.stopped,
                "targets": [t.to_dict() for t in self.targets]}


def _purge(client: BraintrustClient, target: Target, cutoff: datetime) -> dict[str, Any]:
    try:
        return client.purge_deleted(target.object_type, target.object_id, before=format_timestamp(cutoff))
    except BraintrustError as exc:  # real Braintrust has no such route: it purges on its side
        return {"skipped": f"no purge on this plane ({exc.__class__.__name__}); Braintrust purges deleted rows itself"}


def _delete_experiment(
    client: BraintrustClient, policy: RetentionPolicySpec, target: Target, day_plan: DayPlan, cutoff: datetime,
    out: TargetReport, log: Callable[[str], None],
) -> None:
    """Archive (if asked), delete and (locally) purge one whole experiment created before ``cutoff``."""
    key = day_plan.day.isoformat()
    if not experiment_expired(target, cutoff):
        out.skipped[key] = f"the policy now keeps {policy.retention_days} day(s)"
        return
    if policy.archive is not None:
        out.manifests.append(archive_day(client, policy.archive, target, day_plan.day, cutoff, policy.name)["url"])
    client.delete_experiment(target.object_id)
    out.deleted[key] = day_plan.rows
    log(f"{target.label} (created {target.created}): deleted the experiment, {day_plan.rows} row(s)")
    try:  # only the local plane has this route; Braintrust purges a deleted experiment itself
        out.purge = client.purge_experiment(target.object_id)
    except BraintrustError as exc:
        out.purge = {"skipped": f"no purge on this plane ({exc.__class__.__name__}); Braintrust purges deleted experiments itself"}


def apply_policy(
    client: BraintrustClient, policy: RetentionPolicySpec, harvest: HarvestSource = NO_GUARD, *,
    reload: Callable[[], RetentionPolicySpec | None] | None = None, force: bool = False, now: datetime | None = None,
    batch_size: int = 1000, on_batch: Callable[[int], None] | None = None, log: Callable[[str], None] = lambda _: None,
) -> RunReport:
    """Run the policy once (see the module doc)."""
    now = now or datetime.now(UTC)
    report = RunReport(policy.name, cutoff_for(policy.retention_days, now), force)
    for plan in preview(client, policy, harvest, force=force, now=now):
        out = TargetReport(plan.target, plan.cutoff)
        report.targets.append(out)
        for day_plan in plan.days:
            current = reload() if reload is not None else policy
            if current is None or current.apply != "delete":
                report.stopped = f"policy {policy.name!r} was {'removed' if current is None else 'switched to apply=' + repr(current.apply)}"
                log(report.stopped + "; nothing more deleted")
                return report
            cutoff = cutoff_for(current.retention_days, now)
            key = day_plan.day.isoformat()
            if plan.target.object_type == "experiment":
                _delete_experiment(client, current, plan.target, day_plan, cutoff, out, log)
                continue
            if datetime(day_plan.day.year, day_plan.day.month, day_plan.day.day, tzinfo=UTC) >= cutoff:
                out.skipped[key] = f"the policy now keeps {current.retention_days} day(s)"
                continue
            guarded = current.guard and not force and plan.target.object_type == "project_logs"
            readers = harvest.readers(plan.target.project_name, plan.target.project_id) if guarded else ()
            reasons = hold_reasons(day_plan.day, readers)  # live: asked right before deleting
            if reasons:
                out.held_back[key] = reasons
                log(f"{plan.target.label} {key}: held back ({'; '.join(reasons)})")
                continue
            if current.archive is not None:
                manifest = archive_day(client, current.archive, plan.target, day_plan.day, cutoff, current.name)
                out.manifests.append(manifest["url"])
            out.deleted[key] = delete_day(client, plan.target, day_plan.day, cutoff, batch_size=batch_size, on_batch=on_batch)
            log(f"{plan.target.label} {key}: deleted {out.deleted[key]} row(s)")
        if plan.target.object_type != "experiment" and (out.deleted or client.plane == "local"):  # also purges what a killed run tombstoned
            out.purge = _purge(client, plan.target, plan.cutoff)
    return report
