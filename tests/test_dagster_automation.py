"""Schedules and the late-data sensor (real local plane in a tmp home)."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest

from helpers import EXAMPLES
from pipelines_repo.backend import open_client
from pipelines_repo.engine.changes import scan_changes
from pipelines_repo.engine.pull import resolve_source
from pipelines_repo.engine.spec import SourceSpec
from pipelines_repo.local.seed import seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.orchestration import BraintrustResource, build_definitions
from pipelines_repo.settings import ApiSettings

PROJECT = "Customer Support"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


# -- schedules ------------------------------------------------------------------------------------


def schedule_keys(defs: dg.Definitions, name: str, at: datetime) -> list[str]:
    schedule = defs.get_schedule_def(name)
    result = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at))
    return [request.partition_key for request in result.run_requests]


def test_nightly_schedule_targets_the_last_closed_window(isolated_home: Path) -> None:
    defs = build_definitions(EXAMPLES)
    assert schedule_keys(defs, "support_cases_nightly", datetime(2025, 3, 10, 2, 0, tzinfo=UTC)) == ["2025-03-09"]
    assert schedule_keys(defs, "user_feedback_golden_nightly", datetime(2025, 3, 10, 3, 0, tzinfo=UTC)) == ["2025-03-09"]
    # The first of a month and a year boundary.
    assert schedule_keys(defs, "llm_call_traces_nightly", datetime(2026, 1, 1, 2, 0, tzinfo=UTC)) == ["2025-12-31"]


def test_schedule_honours_the_partition_timezone(isolated_home: Path, tmp_path: Path) -> None:
    (tmp_path / "paris.py").write_text(
        textwrap.dedent(
            """
            from pipelines_repo import DatasetPipeline
            DatasetPipeline(
                name="paris",
                source={"project_name": "P", "scope": "span"},
                transform=lambda input: {"input": input},
                target={"project_name": "P", "dataset_name": "d"},
                timezone="Europe/Paris", schedule_hour=0, schedule_minute=30,
            )
            DatasetPipeline(
                name="hourly",
                source={"project_name": "P", "scope": "span"},
                transform=lambda input: {"input": input},
                target={"project_name": "P", "dataset_name": "d"},
                partitions="hourly", schedule_minute=5,
            )
            """
        ),
        encoding="utf-8",
    )
    defs = build_definitions(tmp_path, strict=True)
    schedule = defs.get_schedule_def("paris_nightly")
    assert schedule.execution_timezone == "Europe/Paris" and schedule.cron_schedule == "30 0 * * *"
    # 00:30 in Paris is 23:30Z on 03-09: the Paris day 03-09 has ended, the UTC one has not.
    at = datetime(2025, 3, 10, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert schedule_keys(defs, "paris_nightly", at) == ["2025-03-09"]
    window = defs.get_assets_def(dg.AssetKey(["paris", "pulled_refs"])).partitions_def.time_window_for_partition_key("2025-03-09")
    assert window.start == datetime(2025, 3, 9, tzinfo=ZoneInfo("Europe/Paris"))
    assert schedule_keys(defs, "hourly_nightly", datetime(2025, 3, 10, 7, 5, tzinfo=UTC)) == ["2025-03-10-06:00"]


# -- late-data sensor -----------------------------------------------------------------------------


class Home:
    def __init__(self, home: Path):
        self.home = home
        self.db = home / "braintrust-local.db"
        self.transport = InProcessTransport(self.db)
        self.http = httpx.Client(transport=self.transport, base_url=InProcessTransport.BASE_URL, timeout=60)
        self.today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.project_id = seed_demo_logs(self.http, PROJECT, days=6, spans_per_day=30, seed=3, end=self.today).project_id

    def day(self, days_ago: int) -> str:
        return (self.today - timedelta(days=days_ago)).date().isoformat()

    def log_span(self, created: datetime, *, flagged: bool = True, **fields: Any) -> str:
        span_id = str(uuid.uuid4())
        row = {
            "id": span_id, "span_id": span_id[:16], "root_span_id": uuid.uuid4().hex, "span_parents": None,
            "created": created.isoformat(), "input": {"question": "late?"}, "output": {"answer": "yes"},
            "metadata": {"flagged": flagged, "model": "m", "topic": "t", "user_id": "u"},
            "span_attributes": {"name": "support_request", "type": "task"},
            "project_id": self.project_id, "log_id": "g", **fields,
        }
        self.http.post("/logs3", json={"rows": [row], "api_version": 2}).raise_for_status()
        return span_id


@pytest.fixture
def home(isolated_home: Path):
    h = Home(isolated_home)
    try:
        yield h
    finally:
        h.http.close()


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.get_sensor_def("support_cases_late_data")
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources={"braintrust": BraintrustResource()}
    ) as ctx:
        return sensor.evaluate_tick(ctx)


def test_late_span_requests_exactly_its_materialized_window(home: Home, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(EXAMPLES)
    pushed = home.day(2)  # inside the 3-day lookback
    result = dg.materialize(
        defs.assets, selection=dg.AssetSelection.groups("support_cases"), partition_key=pushed,
        resources={"braintrust": defs.resources["braintrust"]}, instance=instance,
    )
    assert result.success

    first = tick(defs, instance, None)
    assert first.run_requests == [] and first.cursor and int(first.cursor) > 0, "first tick only sets the cursor"
    assert tick(defs, instance, "not-a-cursor").cursor == first.cursor, "an unreadable cursor restarts from now"

    quiet = tick(defs, instance, first.cursor)
    assert quiet.run_requests == [] and quiet.cursor == first.cursor
    assert not quiet.asset_events

    # A late flagged span in the pushed window, one in a never-pushed window inside the lookback,
    # one older than the lookback, and an unflagged one (span scope applies the filter).
    home.log_span(home.today - timedelta(days=2) + timedelta(hours=5))
    home.log_span(home.today - timedelta(days=1) + timedelta(hours=5))
    home.log_span(home.today - timedelta(days=5) + timedelta(hours=5))
    home.log_span(home.today - timedelta(days=3) + timedelta(hours=1), flagged=False)

    late = tick(defs, instance, quiet.cursor)
    assert [r.partition_key for r in late.run_requests] == [pushed]
    assert late.run_requests[0].run_key == f"{pushed}:{late.cursor}"
    assert int(late.cursor) > int(quiet.cursor)
    observed = {e.partition: e for e in late.asset_events}
    assert set(observed) == {home.day(2), home.day(1)}
    assert all(e.asset_key == dg.AssetKey(["braintrust", "customer_support", "logs"]) for e in observed.values())
    assert observed[pushed].metadata["rerun_requested"].value is True
    assert observed[home.day(1)].metadata["rerun_requested"].value is False

    again = tick(defs, instance, late.cursor)
    assert again.run_requests == [] and again.cursor == late.cursor, "nothing new, nothing requested"


def test_scan_is_bounded_per_tick_and_resumes(home: Home) -> None:
    with open_client(ApiSettings(), local_db=home.db) as client:
        source = resolve_source(client, SourceSpec(project_name=PROJECT, filter="metadata.flagged = true"))
        start = tick_cursor = int(client.btql(
            {"select": [{"alias": "x", "expr": {"op": "ident", "name": ["_xact_id"]}}],
             "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                      "args": [{"op": "literal", "value": source.project_id}], "shape": "spans"},
             "sort": [{"expr": {"op": "ident", "name": ["_xact_id"]}, "dir": "desc"}], "limit": 1}
        )["data"][0]["x"])
        for hours in range(5):  # five transactions
            home.log_span(home.today - timedelta(days=1) + timedelta(hours=hours))
        since = home.today - timedelta(days=3)
        seen = 0
        for _ in range(10):
            scan = scan_changes(client, source, after=tick_cursor, since=since, max_pages=1, page_size=2)
            assert scan.pages <= 1 and scan.rows <= 2
            seen += scan.rows
            tick_cursor = scan.cursor
            if scan.exhausted:
                break
        assert seen == 5 and tick_cursor > start
        final = scan_changes(client, source, after=tick_cursor, since=since)
        assert final.rows == 0 and final.cursor == tick_cursor
