"""Pull, push and run against the real in-process local plane (no mocks).

Shapes and semantics follow docs/BT_COMPAT.md §2-§5; where we deliberately differ from
bt (trace origin, push/run validation, zero rows, request counts) the test says so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from helpers import write_pipeline
from pipelines_repo.backend import open_client
from pipelines_repo.engine.loader import load_pipeline_file
from pipelines_repo.engine.pull import SourceProjectNotFoundError, build_discovery_query, pull_refs
from pipelines_repo.engine.push import TargetError, push_file, push_files, push_rows
from pipelines_repo.engine.rows import DuplicateRowIdError, RowValidationError
from pipelines_repo.engine.run import pull_partitions, run_partitions, run_pipeline
from pipelines_repo.engine.spec import SourceSpec, TargetSpec
from pipelines_repo.engine.stages import payloads_path_for, pull_stage, push_stage, transform_stage
from pipelines_repo.engine.window import TimeWindow, format_timestamp
from pipelines_repo.local.seed import seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.settings import local_db_path

NOW = datetime.now(UTC).replace(microsecond=0)


def ts(minutes_ago: float) -> str:
    return format_timestamp(NOW - timedelta(minutes=minutes_ago))


def span(root: str, sid: str, minutes_ago: float, *, parent: str | None = None, **fields) -> dict:
    return {
        "id": sid,
        "span_id": f"s-{sid}",
        "root_span_id": root,
        "span_parents": [f"s-{parent}"] if parent else None,
        "created": ts(minutes_ago),
        **fields,
    }


@pytest.fixture
def client(isolated_home):
    with open_client() as c:
        yield c


def log(client, project_id: str, spans: list[dict]) -> None:
    client.insert_rows([{**s, "project_id": project_id, "log_id": "g"} for s in spans])


@pytest.fixture
def project(client) -> dict:
    return client.ensure_project("src")


FLAGGED_PIPELINE = """
    from braintrust import DatasetPipeline

    def transform(input, output, metadata, id):
        if not (metadata or {}).get("flagged"):
            return None
        return {"input": input, "expected": output, "metadata": {"model": metadata.get("model")}, "tags": ["flagged"]}

    DatasetPipeline(
        name="flagged",
        source={"project_name": "src", "scope": "span"},
        transform=transform,
        target={"project_name": "dst", "dataset_name": "golden", "description": "flagged answers",
                "metadata": {"owner": "qa"}},
    )
"""


# -- pull: span scope ---------------------------------------------------------------------------


def test_span_scope_refs_have_bt_shape_payloads_and_newest_first(client, project) -> None:
    pid = project["id"]
    log(client, pid, [
        span("r1", "a", 30, input="q1", output="o1", metadata={"flagged": True}),
        span("r1", "b", 20, parent="a", input="q1b"),
        span("r2", "c", 10, input="q2"),
        span("r3", "old", 60 * 24 * 3, input="too old"),  # outside the 1d window
    ])
    stream = pull_refs(client, SourceSpec(project_name="src"), window=86400, limit=100)
    items = list(stream)
    assert [item.ref["id"] for item in items] == ["c", "b", "a"]
    ref = items[0].ref
    assert set(ref) == {"id", "origin", "root_span_id"}
    assert ref["root_span_id"] == "r2"
    assert set(ref["origin"]) == {"_xact_id", "created", "id", "object_id", "object_type"}
    assert ref["origin"]["object_type"] == "project_logs"
    assert ref["origin"]["object_id"] == pid
    assert ref["origin"]["id"] == "c"
    assert ref["origin"]["created"] == ts(10)
    # bt's line shape: keys sorted at every level
    assert list(ref) == sorted(ref) and list(ref["origin"]) == sorted(ref["origin"])
    # the payload came with the discovery query (no per-span refetch)
    assert items[2].span["input"] == "q1" and items[2].span["output"] == "o1"
    assert stream.stats.refs == 3 and stream.stats.requests == 1 and stream.stats.pages == 1


def test_span_scope_limit_shrinks_the_page_and_pages_on_cursor(client, project) -> None:
    pid = project["id"]
    log(client, pid, [span(f"r{i}", f"s{i:02d}", i) for i in reversed(range(10))])  # write order = time order
    stream = pull_refs(client, SourceSpec(project_name="src"), window=86400, limit=7, page_size=3)
    ids = [item.ref["id"] for item in stream]
    assert ids == [f"s{i:02d}" for i in range(7)]
    assert stream.stats.pages == 3  # 3 + 3 + 1 (bt: page limit = min(remaining, page_size))


def test_span_scope_filter_root_ids_and_absolute_window(client, project) -> None:
    pid = project["id"]
    log(client, pid, [
        span("r1", "a", 5, metadata={"flagged": True}),
        span("r1", "b", 4, parent="a", metadata={"flagged": False}),
        span("r2", "c", 3, metadata={"flagged": True}),
        span("r9", "d", 60 * 48, metadata={"flagged": True}),
    ])
    flagged = SourceSpec(project_name="src", filter="metadata.flagged = true")
    assert sorted(i.ref["id"] for i in pull_refs(client, flagged, window=86400, limit=100)) == ["a", "c"]
    # root span ids replace the window (bt): the 2-day-old trace is found
    by_root = pull_refs(client, SourceSpec(project_name="src"), window=60, limit=100, root_span_ids=["r9", "r2"])
    assert sorted(i.ref["id"] for i in by_root) == ["c", "d"]
    absolute = TimeWindow(NOW - timedelta(minutes=4, seconds=30), NOW - timedelta(minutes=3))
    assert [i.ref["id"] for i in pull_refs(client, SourceSpec(project_name="src"), window=absolute)] == ["b"]


def test_missing_source_project_is_an_error_naming_it_and_never_created(client) -> None:
    with pytest.raises(SourceProjectNotFoundError, match=r"'nope' not found in organization 'local'"):
        pull_refs(client, SourceSpec(project_name="nope"), window=86400, limit=10)
    assert client.get_project(name="nope") is None


def test_discovery_query_is_bts_json_ast() -> None:
    query = build_discovery_query("pid", "trace", {"btql": "x = 1"})
    assert query["select"] == [
        {"alias": f, "expr": {"op": "ident", "name": [f]}} for f in ("root_span_id", "id", "created", "_xact_id", "is_root")
    ]
    assert query["from"] == {
        "op": "function", "name": {"op": "ident", "name": ["project_logs"]},
        "args": [{"op": "literal", "value": "pid"}], "shape": "spans",
    }
    assert query["sort"] == [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}]
    assert build_discovery_query("pid", "span", None)["select"] == [{"op": "star"}]


# -- pull: trace scope --------------------------------------------------------------------------


def test_trace_scope_origin_is_the_root_even_when_bt_would_not_read_its_page(client, project) -> None:
    pid = project["id"]
    # Listed in write order (= _pagination_key order); discovery reads newest first.
    log(client, pid, [
        span("t1", "t1-root", 120, input="question"),        # the root, on a page bt never reads
        span("t3", "t3-b", 45, parent="missing-root"),        # no root logged: earliest created wins
        span("t3", "t3-a", 40, parent="missing-root"),
        *[span("t1", f"t1-c{i}", 2 + i, parent="t1-root") for i in reversed(range(5))],
        span("t2", "t2-child", 50, parent="t2-late-root"),
        span("t2", "t2-late-root", 1),                        # is_root beats an earlier child
    ])
    stream = pull_refs(client, SourceSpec(project_name="src", scope="trace"), window=86400, limit=1, page_size=2)
    (item,) = list(stream)
    assert set(item.ref) == {"origin", "root_span_id"}  # trace refs carry no id
    assert item.ref["root_span_id"] == "t2"
    assert item.ref["origin"]["id"] == "t2-late-root"

    items = list(pull_refs(client, SourceSpec(project_name="src", scope="trace"), window=86400, limit=3, page_size=2))
    by_root = {i.ref["root_span_id"]: i for i in items}
    assert [i.ref["root_span_id"] for i in items] == ["t2", "t1", "t3"]  # order of first appearance
    assert by_root["t1"].ref["origin"]["id"] == "t1-root"  # bt would pick t1-c4 (docs/BT_COMPAT.md limitation 4)
    assert by_root["t1"].ref["origin"]["created"] == ts(120)
    assert by_root["t3"].ref["origin"]["id"] == "t3-b"
    assert sorted(s["id"] for s in by_root["t1"].spans) == sorted(["t1-root", *[f"t1-c{i}" for i in range(5)]])


def test_trace_scope_without_limit_streams_many_traces_per_query(client, project) -> None:
    pid = project["id"]
    spans = []
    for t in range(250):
        spans.append(span(f"t{t:03d}", f"t{t:03d}-root", 100 + t))
        spans.append(span(f"t{t:03d}", f"t{t:03d}-kid", 99 + t, parent=f"t{t:03d}-root"))
    log(client, pid, spans)
    stream = pull_refs(client, SourceSpec(project_name="src", scope="trace"), window=86400)
    first = next(stream)  # streams: the first 100 traces are hydrated (and at most the next 100), not all 250
    assert stream.stats.hydrate_requests in (1, 2) and len(first.spans) == 2
    items = [first, *stream]
    assert len(items) == 250 and len({i.ref["root_span_id"] for i in items}) == 250
    assert all(len(i.spans) == 2 and i.ref["origin"]["id"].endswith("-root") for i in items)
    assert stream.stats.hydrate_requests <= 3  # 100 traces per query
    assert stream.stats.requests <= 5


def test_span_scope_needs_at_most_three_requests_per_thousand_spans(isolated_home) -> None:
    transport = InProcessTransport(local_db_path())
    with httpx.Client(transport=transport, base_url=transport.BASE_URL, timeout=60) as http:
        seeded = seed_demo_logs(http, "demo", days=3, spans_per_day=1000)
    with open_client() as client:
        before = client.stats.snapshot()
        stream = pull_refs(client, SourceSpec(project_name="demo"), window=None, limit=None)
        next(stream)
        assert stream.stats.requests == 1  # streams page by page
        count = 1 + sum(1 for item in stream if item.span is not None)
        used = client.stats.since(before)["requests_by_endpoint"].get("POST /btql", 0)
    assert count == seeded.spans == 3000
    assert used / (count / 1000) <= 3, used


# -- push ---------------------------------------------------------------------------------------


def test_push_creates_dataset_with_description_and_metadata_and_replaces_by_id(client) -> None:
    target = TargetSpec(project_name="dst", dataset_name="ds", description="desc", metadata={"k": 1})
    rows = [{"id": f"r{i}", "input": i, "expected": i * 2, "tags": ["x"]} for i in range(5)]
    first = push_rows(client, rows, target, batch_rows=2)
    assert (first.rows_pushed, first.batches) == (5, 3)
    dataset = client.get_dataset(first.dataset_id)
    assert dataset["description"] == "desc" and dataset["metadata"] == {"k": 1}
    second = push_rows(client, [{**r, "expected": "new"} for r in rows], target)
    assert second.dataset_id == first.dataset_id
    assert int(second.version) > int(first.version)
    fetched = list(client.fetch_dataset(first.dataset_id))
    assert len(fetched) == 5 and {r["expected"] for r in fetched} == {"new"}
    assert first.dataset_url.endswith("/p/dst/datasets/ds")


def test_push_validation_duplicates_and_zero_rows(client) -> None:
    target = TargetSpec(project_name="dst", dataset_name="ds2")
    with pytest.raises(DuplicateRowIdError, match="duplicate dataset row id 'a'"):
        push_rows(client, [{"id": "a", "input": 1}, {"id": "a", "input": 2}], target)
    with pytest.raises(RowValidationError, match="'output' is not a dataset field"):
        push_rows(client, [{"id": "b", "output": 1}], target)
    empty = push_rows(client, [], target)
    assert empty.rows_pushed == 0 and empty.batches == 0
    with pytest.raises(TargetError, match="looks like a dataset id"):
        push_rows(client, [], TargetSpec(project_name="dst", dataset_name="00000000-0000-4000-8000-000000000000"))


# -- run ----------------------------------------------------------------------------------------


def _expected_rows(spans: list[dict], pid: str, client) -> dict[str, dict]:
    out = {}
    for s in spans:
        if (s.get("metadata") or {}).get("flagged"):
            out[s["id"]] = {"input": s.get("input"), "expected": s.get("output"),
                            "metadata": {"model": s["metadata"].get("model")}, "tags": ["flagged"]}
    return out


def _dataset(client, dataset_id: str) -> dict[str, dict]:
    return {r["id"]: r for r in client.fetch_dataset(dataset_id)}


def test_run_pipeline_end_to_end_and_rerun_replaces(client, project, tmp_path) -> None:
    pid = project["id"]
    spans = [
        span(f"r{i}", f"s{i}", i + 1, input={"q": i}, output={"a": i},
             metadata={"flagged": i % 3 == 0, "model": "m"})
        for i in range(30)
    ]
    log(client, pid, spans)
    (spec,) = load_pipeline_file(write_pipeline(tmp_path, "pipe.py", FLAGGED_PIPELINE))
    first = run_pipeline(spec, client, window=86400, limit=100)
    assert first.pull.refs == 30 and first.transform.candidates == 30
    assert first.push.rows_pushed == 10 and first.transform.skipped == 0
    rows = _dataset(client, first.push.dataset_id)
    expected = _expected_rows(spans, pid, client)
    assert set(rows) == set(expected)
    for row_id, want in expected.items():
        got = rows[row_id]
        assert {k: got.get(k) for k in want} == want
        assert got["origin"]["id"] == row_id and got["origin"]["object_id"] == pid
        assert got["origin"]["object_type"] == "project_logs"
    dataset = client.get_dataset(first.push.dataset_id)
    assert dataset["description"] == "flagged answers" and dataset["metadata"] == {"owner": "qa"}
    summary = first.summary()
    assert summary["rows"] == 10 and summary["dataset_version"] == first.push.version

    second = run_pipeline(spec, client, window=86400, limit=100)
    assert len(_dataset(client, second.push.dataset_id)) == 10
    # change-aware push: nothing changed, so nothing is sent and no version is created
    assert second.push.version == first.push.version
    assert (second.push.rows_pushed, second.push.unchanged, second.push.added) == (0, 10, 0)


def test_run_skip_policy_records_errors(client, project, tmp_path) -> None:
    log(client, project["id"], [span(f"r{i}", f"s{i}", i + 1, input=i) for i in range(10)])
    path = write_pipeline(tmp_path, "pipe.py", """
        from braintrust import DatasetPipeline
        def transform(input):
            if input == 3:
                raise ValueError("bad input 3")
            return {"input": input}
        DatasetPipeline(name="p", source={"project_name": "src"}, transform=transform,
                        target={"project_name": "dst", "dataset_name": "skips"})
    """)
    (spec,) = load_pipeline_file(path)
    errors = tmp_path / "errors.jsonl"
    result = run_pipeline(spec, client, window=86400, limit=None, on_error="skip", errors_path=errors,
                          max_error_rate=0.5)
    assert (result.transform.candidates, result.transform.skipped, result.push.rows_pushed) == (10, 1, 9)
    (line,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert line["ref"]["id"] == "s3" and "bad input 3" in line["error"]


def test_run_partitions_one_sweep_split_by_created(client, project, tmp_path) -> None:
    day = NOW.replace(hour=0, minute=0, second=0) - timedelta(days=3)
    windows = [TimeWindow(day + timedelta(days=d), day + timedelta(days=d + 1)) for d in range(3)]
    spans = []
    for d, n in enumerate((2, 0, 3)):
        for i in range(n):
            created = format_timestamp(day + timedelta(days=d, hours=1 + i))
            spans.append({"id": f"d{d}-{i}", "root_span_id": f"d{d}-{i}", "created": created, "input": i,
                          "output": i, "metadata": {"flagged": True, "model": "m"}})
    log(client, project["id"], spans)
    (spec,) = load_pipeline_file(write_pipeline(tmp_path, "pipe.py", FLAGGED_PIPELINE))
    stream, pairs = pull_partitions(client, spec.source, windows)
    assert [(w, i.ref["id"]) for w, i in pairs][-1] == (windows[0], "d0-0")
    result = run_partitions(spec, client, windows)
    assert [(c.refs, c.rows) for c in result.partitions.values()] == [(2, 2), (0, 0), (3, 3)]
    assert result.result.pull.pages == 1 and result.result.push.rows_pushed == 5


# -- staged -------------------------------------------------------------------------------------


def test_staged_pull_transform_push_with_in_defaults_and_hydration(client, project, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    pid = project["id"]
    spans = [span(f"r{i}", f"s{i}", i + 1, input=i, output=-i, metadata={"flagged": True, "model": "m"})
             for i in range(12)]
    log(client, pid, spans)
    path = write_pipeline(tmp_path, "pipe.py", FLAGGED_PIPELINE)
    (spec,) = load_pipeline_file(path)
    pulled = pull_stage(client, spec, pipeline_path="pipe.py", window=86400, window_label="1d", limit=100)
    assert pulled.out == Path("bt-sync/dataset_pipeline_pipe") / pulled.spec_dir.name / "pulled.jsonl"
    lines = [json.loads(x) for x in pulled.out.read_text().splitlines()]
    assert len(lines) == 12 and set(lines[0]) == {"id", "origin", "root_span_id"}
    assert pulled.out.read_text().splitlines()[0] == json.dumps(lines[0], sort_keys=True, separators=(",", ":"))
    assert payloads_path_for(pulled.out).is_file()
    manifest = json.loads((pulled.spec_dir / "pull.manifest.json").read_text())
    assert manifest["spec"]["pull"] == {"limit": 100, "rootSpanIds": [], "window": "1d", "pageSize": 1000}
    assert manifest["spec"]["source"]["projectId"] == pid

    before = client.stats.requests
    transformed = transform_stage(client, spec, pipeline_path="pipe.py")  # --in defaults to the latest pull
    assert transformed.input_path == pulled.out and transformed.used_payloads
    assert client.stats.requests == before  # no refetch
    assert transformed.out == pulled.spec_dir / "transformed.jsonl" and transformed.stats.rows == 12

    pushed = push_stage(client, spec, pipeline_path="pipe.py")  # --in defaults to the latest transform
    assert pushed.rows_pushed == 12 and pushed.status == "completed"
    assert push_stage(client, spec, pipeline_path="pipe.py").status == "already_completed"

    # An edited pulled.jsonl (no matching sidecar) is hydrated in batches instead.
    pulled.out.write_text("\n".join(json.dumps(x) for x in lines[:5]) + "\n")
    again = transform_stage(client, spec, pipeline_path="pipe.py", in_path=pulled.out, out=tmp_path / "t2.jsonl")
    assert not again.used_payloads and again.requests == 1 and again.stats.rows == 5
    first = [json.loads(x) for x in transformed.out.read_text().splitlines()][:5]
    assert [json.loads(x) for x in (tmp_path / "t2.jsonl").read_text().splitlines()] == first


def test_push_file_is_keyed_by_content_not_path(client, tmp_path) -> None:
    target = TargetSpec(project_name="dst", dataset_name="keyed")
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps({"id": f"x{i}", "input": i}) + "\n" for i in range(3)))
    assert push_file(client, a, target, root=tmp_path / "root").status == "completed"
    b = tmp_path / "b.jsonl"
    b.write_bytes(a.read_bytes())
    assert push_file(client, b, target, root=tmp_path / "root").status == "already_completed"
    forced = push_file(client, b, target, root=tmp_path / "root", force=True)
    # forced past the checkpoint, but change-aware: the 3 rows are already there
    assert forced.status == "completed" and (forced.rows_pushed, forced.unchanged) == (0, 3)
    a.write_text(a.read_text() + json.dumps({"id": "x3", "input": 3}) + "\n")
    grown = push_file(client, a, target, root=tmp_path / "root")
    assert (grown.rows_pushed, grown.added, grown.unchanged) == (1, 1, 3)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_push_files_share_batches_and_keep_a_checkpoint_each(client, tmp_path) -> None:
    """A backfill's partitions: rows of many files in few uploads, each file resumable alone."""
    target = TargetSpec(project_name="dst", dataset_name="windows")
    root = tmp_path / "root"
    big = write_jsonl(tmp_path / "big.jsonl", [{"id": f"b{i}", "input": i} for i in range(1500)])
    small = write_jsonl(tmp_path / "small.jsonl", [{"id": f"s{i}", "input": i} for i in range(7)])
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    same = write_jsonl(tmp_path / "same.jsonl", [{"id": f"s{i}", "input": i} for i in range(7)])  # = small
    files = [big, small, empty, same]

    before = client.stats.requests_by_endpoint["POST /logs3"]
    pushed = push_files(client, files, target, root=root)
    assert client.stats.requests_by_endpoint["POST /logs3"] - before == pushed.batches == 2  # 1507 rows
    # + one emptiness query instead of a lookup per batch (a new dataset), project, dataset, version
    assert pushed.rows_pushed == 1507 and pushed.requests == pushed.batches + 1 + 3
    assert [f.rows_pushed for f in pushed.files] == [1500, 7, 0, 7]
    assert [f.status for f in pushed.files] == ["completed"] * 4
    assert {f.version for f in pushed.files} == {pushed.version} and pushed.version is not None
    states = [json.loads(p.read_text()) for p in root.glob("dataset_*/*/state.json")]
    assert sorted(s["items_done"] for s in states) == [0, 7, 1500]  # one checkpoint per distinct content
    dataset = client.find_dataset(client.get_project(name="dst")["id"], "windows")
    assert len(list(client.fetch_dataset(dataset["id"]))) == 1507

    # Completed checkpoints: nothing is sent again, unless re-pushing is asked for.
    before = client.stats.requests_by_endpoint["POST /logs3"]
    again = push_files(client, files, target, root=root)
    assert [f.status for f in again.files] == ["already_completed"] * 4 and again.rows_pushed == 0
    assert client.stats.requests_by_endpoint["POST /logs3"] == before
    repushed = push_files(client, files, target, root=root, repush_completed=True)
    # re-pushed, but every row is unchanged: nothing sent, no new version
    assert repushed.rows_pushed == 0 and repushed.changes.unchanged == 1507 and repushed.version == pushed.version
    assert len(list(client.fetch_dataset(dataset["id"]))) == 1507  # replaced, not doubled


def test_push_files_validate_every_file_before_uploading(client, tmp_path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "g", "input": 1}])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "input": 1}, {"id": "y", "output": 2}])
    before = client.stats.requests
    with pytest.raises(RowValidationError, match=r"bad\.jsonl line 2.*output"):
        push_files(client, [good, bad], TargetSpec(project_name="dst", dataset_name="never"), root=tmp_path / "r")
    assert client.stats.requests == before  # not even the target was created
