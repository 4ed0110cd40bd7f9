"""Materializing the compiled assets against the embedded local plane (real parts, tmp home).

Expectations are computed independently of the engine: from the deterministic demo-log generator
(`pipelines_repo.local.seed.generate_demo_logs`) and each example transform's documented mapping.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from helpers import EXAMPLES
from pipelines_repo.backend import open_client
from pipelines_repo.engine.push import latest_dataset_version
from pipelines_repo.engine.window import parse_timestamp
from pipelines_repo.local.seed import generate_demo_logs, seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.orchestration import build_definitions
from pipelines_repo.settings import ApiSettings

PROJECT = "Customer Support"
DAYS = 30
SPANS_PER_DAY = 60
SEED = 11


# -- fixtures and helpers -------------------------------------------------------------------------


class Plane:
    """The seeded local plane of one test home, plus an independent view of what was seeded."""

    def __init__(self, home: Path):
        self.home = home
        self.db = home / "braintrust-local.db"
        self.end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        transport = InProcessTransport(self.db)
        with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL, timeout=120) as http:
            result = seed_demo_logs(http, PROJECT, days=DAYS, spans_per_day=SPANS_PER_DAY, seed=SEED, end=self.end)
        self.project_id = result.project_id
        self.spans = [
            row
            for row in generate_demo_logs(self.project_id, days=DAYS, spans_per_day=SPANS_PER_DAY, seed=SEED, end=self.end)
            if "comment" not in row
        ]

    def day(self, days_ago: int) -> str:
        return (self.end - timedelta(days=days_ago)).date().isoformat()

    def client(self):
        return open_client(ApiSettings(), local_db=self.db)

    def dataset(self, name: str) -> tuple[dict[str, dict[str, Any]], str | None]:
        return read_dataset(self.db, name)


def read_dataset(db: Path, name: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Rows by id (the dataset fields only) and the dataset version; ({}, None) if missing."""
    with open_client(ApiSettings(), local_db=db) as client:
        project = client.get_project(name=PROJECT)
        found = client.find_dataset(project["id"], name) if project else None
        if found is None:
            return {}, None
        rows = {
            row["id"]: {k: row.get(k) for k in ("input", "expected", "metadata", "tags")}
            for row in client.fetch_dataset(found["id"])
        }
        return rows, latest_dataset_version(client, found["id"])


def in_days(created: str, first: str, last: str) -> bool:
    day = parse_timestamp(created).date().isoformat()
    return first <= day <= last


def expected_support_cases(plane: Plane, first: str, last: str) -> dict[str, dict[str, Any]]:
    """support_cases.py: flagged spans -> {input, expected: output, metadata subset, tags}."""
    out = {}
    for span in plane.spans:
        meta = span.get("metadata") or {}
        if meta.get("flagged") is True and in_days(span["created"], first, last):
            out[span["id"]] = {
                "input": span["input"],
                "expected": span["output"],
                "metadata": {"model": meta.get("model"), "topic": meta.get("topic"), "user_id": meta.get("user_id")},
                "tags": ["flagged"],
            }
    return out


def expected_llm_traces(plane: Plane, first: str, last: str) -> dict[str, Any]:
    """trace_llm_calls.py: traces with a span scoring correctness >= 0.7 -> last LLM span's output,
    keyed by root span id, attributed to the root's day."""
    by_root: dict[str, list[dict[str, Any]]] = {}
    for span in plane.spans:
        by_root.setdefault(span["root_span_id"], []).append(span)
    out = {}
    for root_id, spans in by_root.items():
        root = next(s for s in spans if s.get("span_parents") is None)
        if not any((s.get("scores") or {}).get("correctness", -1) >= 0.7 for s in spans):
            continue
        if not in_days(root["created"], first, last):
            continue
        llm = sorted((s for s in spans if s["span_attributes"]["type"] == "llm"), key=lambda s: s["metrics"]["start"])
        if llm:
            out[root_id] = llm[-1]["output"]
    return out


@pytest.fixture
def plane(isolated_home: Path) -> Plane:
    return Plane(isolated_home)


def materialize(
    defs: dg.Definitions, group: str, instance: dg.DagsterInstance, *, partition: str | None = None,
    first: str | None = None, last: str | None = None,
) -> dg.ExecuteInProcessResult:
    tags = {}
    if partition is None:
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize(
        defs.assets,
        selection=dg.AssetSelection.groups(group),
        partition_key=partition,
        tags=tags,
        resources={"braintrust": defs.resources["braintrust"]},
        instance=instance,
        raise_on_error=False,
    )


def events_by(result: dg.ExecuteInProcessResult, stage: str) -> dict[str, dg.AssetMaterialization]:
    return {
        e.materialization.partition: e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path[-1] == stage
    }


def meta(m: dg.AssetMaterialization, key: str) -> Any:
    value = m.metadata[key]
    return getattr(value, "value", value)


# -- tests ----------------------------------------------------------------------------------------


def test_one_partition(plane: Plane, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(EXAMPLES)
    day = plane.day(3)
    result = materialize(defs, "support_cases", instance, partition=day)
    assert result.success

    expected = expected_support_cases(plane, day, day)
    assert expected, "the seed has flagged spans that day"
    rows, version = plane.dataset("Support cases")
    assert rows == expected

    pulled = events_by(result, "pulled_refs")[day]
    assert meta(pulled, "dagster/row_count") == meta(pulled, "refs") == len(expected)
    assert meta(pulled, "pages") == 1 and meta(pulled, "api_requests") == 1  # payloads come with the refs
    assert "local data plane" in meta(pulled, "plane")
    assert meta(pulled, "window_start") == datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
    assert Path(meta(pulled, "pulled_jsonl")).is_relative_to(plane.home / "bt-sync" / "dataset_pipeline_support-cases")

    rows_event = events_by(result, "transformed_rows")[day]
    assert meta(rows_event, "candidates") == meta(rows_event, "rows") == len(expected)
    assert meta(rows_event, "skipped") == 0
    preview = rows_event.metadata["preview"]
    assert isinstance(preview, dg.TableMetadataValue) and 0 < len(preview.records) <= 5

    pushed = events_by(result, "dataset_version")[day]
    assert meta(pushed, "dataset_version") == version  # text: the exact id to pin evals to
    assert meta(pushed, "dagster/row_count") == len(expected)
    assert isinstance(pushed.metadata["dataset_url"], dg.UrlMetadataValue)
    assert pushed.tags["dagster/data_version"] == version
    staged = Path(meta(pulled, "pulled_jsonl")).parent
    assert {p.name for p in staged.iterdir()} >= {
        "pull.spec.json", "pulled.jsonl", "pulled.spans.jsonl", "pull.manifest.json",
        "transform.spec.json", "transformed.jsonl", "transform.manifest.json",
    }
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {
        "rows_valid": True, "error_rate_ok": True, "unique_row_ids": True, "schema_valid": True,
    }


def test_range_is_one_run_with_per_partition_materializations(plane: Plane, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(EXAMPLES)
    first, last = plane.day(DAYS), plane.day(1)
    started = time.monotonic()
    result = materialize(defs, "support_cases", instance, first=first, last=last)
    elapsed = time.monotonic() - started
    assert result.success, elapsed

    expected = expected_support_cases(plane, first, last)
    rows, _ = plane.dataset("Support cases")
    assert rows == expected

    keys = [plane.day(n) for n in range(DAYS, 0, -1)]
    for stage in ("pulled_refs", "transformed_rows", "dataset_version"):
        assert set(instance.get_materialized_partitions(dg.AssetKey(["support_cases", stage]))) == set(keys)
    per_day = Counter(parse_timestamp(s["created"]).date().isoformat() for s in plane.spans if (s.get("metadata") or {}).get("flagged") is True)
    pulled = events_by(result, "pulled_refs")
    assert {k: meta(m, "refs") for k, m in pulled.items()} == {k: per_day.get(k, 0) for k in keys}
    assert {meta(m, "pages") for m in pulled.values()} == {1}, "one discovery sweep for the whole range"
    assert {meta(m, "partitions_in_run") for m in pulled.values()} == {DAYS}
    pushed = events_by(result, "dataset_version")
    assert {k: meta(m, "rows") for k, m in pushed.items()} == {k: per_day.get(k, 0) for k in keys}
    batches = -(-sum(per_day.values()) // 1000)  # the windows' rows share upload batches
    assert {meta(m, "run_batches") for m in pushed.values()} == {batches}
    # + one compare lookup per batch and one version query
    assert {meta(m, "api_requests") for m in pushed.values()} == {2 * batches + 1}
    runs = instance.get_runs()
    assert len(runs) == 1


def test_rerun_changes_nothing_not_even_the_version(plane: Plane, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(EXAMPLES)
    first, last = plane.day(5), plane.day(1)
    assert materialize(defs, "support_cases", instance, first=first, last=last).success
    rows_before, version_before = plane.dataset("Support cases")
    assert materialize(defs, "support_cases", instance, first=first, last=last).success
    rows_after, version_after = plane.dataset("Support cases")
    assert rows_after == rows_before == expected_support_cases(plane, first, last)
    assert version_after == version_before  # change-aware push: nothing sent, no version


def test_trace_scope_range_splits_by_trace_origin(plane: Plane, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(EXAMPLES)
    first, last = plane.day(10), plane.day(1)
    result = materialize(defs, "llm_call_traces", instance, first=first, last=last)
    assert result.success
    expected = expected_llm_traces(plane, first, last)
    rows, _ = plane.dataset("Correct LLM traces")
    assert {k: v["expected"] for k, v in rows.items()} == expected
    per_day = Counter()
    for root_id in expected:
        root = next(s for s in plane.spans if s["root_span_id"] == root_id and s.get("span_parents") is None)
        per_day[parse_timestamp(root["created"]).date().isoformat()] += 1
    pushed = events_by(result, "dataset_version")
    assert {k: meta(m, "rows") for k, m in pushed.items() if meta(m, "rows")} == dict(per_day)


CHECKED = '''
from pipelines_repo import DatasetPipeline

def good(input, output):
    return {"input": input, "expected": output}

def dupes(input, output):
    return {"id": "same-id", "input": input, "expected": output}

def invalid(input, output):
    return {"input": input, "output": output}   # 'output' is not a dataset field

def flaky(id, input, output):
    if id[0] in "0123456789ab":
        raise RuntimeError("upstream model timed out")
    return {"input": input, "expected": output}

SOURCE = {"project_name": "Customer Support", "filter": "metadata.flagged = true", "scope": "span"}
TARGET = {"project_name": "Customer Support", "dataset_name": "Checked"}
DatasetPipeline(name="good", source=SOURCE, transform=good, target=TARGET)
DatasetPipeline(name="dupes", source=SOURCE, transform=dupes, target=TARGET)
DatasetPipeline(name="invalid", source=SOURCE, transform=invalid, target=TARGET, on_error="skip", max_error_rate=1.0)
DatasetPipeline(name="flaky", source=SOURCE, transform=flaky, target=TARGET, on_error="skip", max_error_rate=0.1)
'''


@pytest.mark.parametrize(
    ("pipeline", "failing"),
    [("dupes", "unique_row_ids"), ("invalid", "rows_valid"), ("flaky", "error_rate_ok")],
)
def test_failed_check_blocks_the_push(plane: Plane, instance: dg.DagsterInstance, tmp_path: Path, pipeline: str, failing: str) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "checked.py").write_text(textwrap.dedent(CHECKED), encoding="utf-8")
    defs = build_definitions(folder, strict=True)
    first, last = plane.day(6), plane.day(1)
    assert materialize(defs, "good", instance, first=first, last=last).success
    before = plane.dataset("Checked")
    assert before[0]

    result = materialize(defs, pipeline, instance, first=first, last=last)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[failing].passed
    assert checks[failing].severity == dg.AssetCheckSeverity.ERROR
    assert [name for name, c in checks.items() if not c.passed] == [failing]
    assert not instance.get_materialized_partitions(dg.AssetKey([pipeline, "dataset_version"]))
    assert instance.get_materialized_partitions(dg.AssetKey([pipeline, "transformed_rows"]))
    assert plane.dataset("Checked") == before, "dataset unchanged"


def test_run_output_through_the_assets_comes_from_the_last_llm_span(isolated_home: Path, instance: dg.DagsterInstance) -> None:
    """The otel-review-queue example over OTLP-ingested traces: rows keep the last llm span's output."""
    from pipelines_repo.local.seed_otel import seed_otel_traces

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    db = isolated_home / "braintrust-local.db"
    with httpx.Client(transport=InProcessTransport(db), base_url=InProcessTransport.BASE_URL, timeout=120) as http:
        http.post("/v1/project", json={"name": PROJECT}).raise_for_status()
        seed_otel_traces(http, PROJECT, traces=4, seed=3, end=end)
        project_id = http.get("/v1/project", params={"project_name": PROJECT}).json()["objects"][0]["id"]
        spans = http.post("/btql", json={"query": f"SELECT * FROM project_logs('{project_id}') LIMIT 1000"}).json()["data"]
    llm = [s for s in spans if (s.get("span_attributes") or {}).get("type") == "llm" and s.get("output") is not None]
    last_llm = {}
    for span in sorted(llm, key=lambda s: s["metrics"]["end"]):
        last_llm[span["root_span_id"]] = span
    days = {parse_timestamp(s["created"]).date().isoformat() for s in spans}
    assert len(last_llm) == 4 and len(days) == 1
    result = materialize(build_definitions(EXAMPLES), "otel_review_queue", instance, partition=days.pop())
    assert result.success
    rows, _ = read_dataset(db, "Review queue")
    assert len(rows) == 4
    for row in rows.values():
        source = last_llm[row["metadata"]["root_span_id"]]
        assert row["metadata"]["run_output"] == source["output"] and row["metadata"]["span_id"] == source["span_id"]
        assert row["expected"] is None and row["tags"] == ["needs-review"]
