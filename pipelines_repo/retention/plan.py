"""What a run would do: the cutoff, the expired days that hold rows, and which days the guard keeps.

    cutoff = start of today (UTC) - retention_days
    expired_days(client, target, cutoff) -> {day: rows}       rows created before the cutoff, per UTC day
    plan_target(client, policy, target, harvest, now) -> TargetPlan

Days are counted by paging ``created`` through BTQL (the local plane has no aggregates; Braintrust
pages the same way), oldest first. Only ``project_logs`` are guarded: pipelines and exports read
logs, not dataset rows or experiments.

An experiment is deleted whole, as Braintrust does ("metadata and all rows", by creation time):
its target's plan has one entry, the experiment's creation day and its row count, when it was
created before the cutoff, else none. No guard: nothing here harvests experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..client import BraintrustClient
from ..engine.btql import btql_pages, dataset_from, experiment_from, ident, project_logs_from
from ..engine.window import TimeWindow, parse_timestamp
from .guard import HarvestSource, hold_reasons
from .spec import RetentionPolicySpec

__all__ = ["DayPlan", "QUERY_SOURCE", "Target", "TargetPlan", "count_rows", "cutoff_for", "day_window", "experiment_expired",
           "expired_days", "object_from", "plan_target"]

QUERY_SOURCE = "bt_dagster_retention"


def cutoff_for(retention_days: int, now: datetime | None = None) -> datetime:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=retention_days)


@dataclass(frozen=True)
class Target:
    """One object a policy deletes from: a project's logs, one dataset of a project, or one experiment."""

    object_type: str  # "project_logs" | "dataset" | "experiment"
    object_id: str  # project id, dataset id or experiment id
    project_id: str
    project_name: str
    label: str  # e.g. "Customer Support" or "Customer Support / Support cases"
    created: str | None = None  # an experiment's creation time (what its expiry is judged by)


def object_from(target: Target) -> dict[str, Any]:
    if target.object_type == "experiment":
        return experiment_from(target.object_id)
    return project_logs_from(target.object_id) if target.object_type == "project_logs" else dataset_from(target.object_id)


def count_rows(client: BraintrustClient, target: Target) -> int:
    """Every row of the object (an experiment's, to report what its deletion removes)."""
    query = {"select": [{"alias": "id", "expr": ident("id")}], "from": object_from(target),
             "sort": [{"expr": ident("_pagination_key"), "dir": "asc"}]}
    return sum(len(page) for page in btql_pages(client, query, page_limit=1000, query_source=QUERY_SOURCE))


def experiment_expired(target: Target, cutoff: datetime) -> bool:
    return target.created is not None and parse_timestamp(target.created) < cutoff


def day_window(day: date | None, cutoff: datetime) -> TimeWindow:
    """``day`` (UTC) clipped at the cutoff; ``None``: everything before the cutoff."""
    if day is None:
        return TimeWindow.absolute(None, cutoff)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return TimeWindow.absolute(start, min(start + timedelta(days=1), cutoff))


def expired_days(client: BraintrustClient, target: Target, cutoff: datetime) -> dict[date, int]:
    """Rows created before ``cutoff``, per UTC day, oldest first."""
    query = {
        "select": [{"alias": "created", "expr": ident("created")}],
        "from": object_from(target),
        "filter": day_window(None, cutoff).filter_part(),
        "sort": [{"expr": ident("_pagination_key"), "dir": "asc"}],
    }
    days: dict[date, int] = {}
    for page in btql_pages(client, query, page_limit=1000, query_source=QUERY_SOURCE):
        for row in page:
            day = parse_timestamp(str(row["created"])).date()
            days[day] = days.get(day, 0) + 1
    return dict(sorted(days.items()))


@dataclass
class DayPlan:
    day: date
    rows: int
    held_back: list[str] = field(default_factory=list)  # reasons; empty = to delete

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "rows": self.rows, "held_back": self.held_back}


@dataclass
class TargetPlan:
    target: Target
    cutoff: datetime
    days: list[DayPlan]

    @property
    def held(self) -> list[DayPlan]:
        return [d for d in self.days if d.held_back]


def plan_target(
    client: BraintrustClient, policy: RetentionPolicySpec, target: Target, harvest: HarvestSource,
    *, now: datetime | None = None, force: bool = False,
) -> TargetPlan:
    cutoff = cutoff_for(policy.retention_days, now)
    if target.object_type == "experiment":
        if not experiment_expired(target, cutoff):
            return TargetPlan(target, cutoff, [])
        return TargetPlan(target, cutoff, [DayPlan(parse_timestamp(str(target.created)).date(), count_rows(client, target))])
    guarded = policy.guard and not force and target.object_type == "project_logs"
    readers = harvest.readers(target.project_name, target.project_id) if guarded else ()
    days = [DayPlan(day, rows, hold_reasons(day, readers)) for day, rows in expired_days(client, target, cutoff).items()]
    return TargetPlan(target, cutoff, days)
