"""Streaming transforms: bt's arguments, sync/async concurrency, order, error policy, traces."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest
from braintrust.trace import SpanData

from pipelines_repo.engine.items import TransformItem
from pipelines_repo.engine.spec import PipelineSpec, SourceSpec, TargetSpec
from pipelines_repo.engine.trace import PipelineTrace, TraceUnavailableError
from pipelines_repo.engine import transform as transform_module
from pipelines_repo.engine.transform import (
    TransformError,
    TransformStats,
    call_args,
    make_trace_factory,
    transform_items,
)


def make_spec(transform, scope="span", **options):
    return PipelineSpec(
        name="t",
        source=SourceSpec(project_id="proj", scope=scope),
        target=TargetSpec(dataset_name="d"),
        transform=transform,
        code_version="test",
        **({"options": options} if options else {}),
    )


def origin(row_id):
    return {"id": row_id, "object_id": "proj", "object_type": "project_logs", "_xact_id": "1", "created": "2025-01-01T00:00:00.000000Z"}


def span_item(i, root="root", payload=True):
    row_id = f"s{i}"
    ref = {"id": row_id, "origin": origin(row_id), "root_span_id": root}
    span = {"id": row_id, "span_id": row_id, "root_span_id": root, "input": i, "output": i * 10, "metadata": {"i": i}}
    return TransformItem(ref=ref, span=span if payload else None)


SPANS = [
    {"id": "r", "span_id": "r", "span_attributes": {"type": "task", "name": "root"}, "input": "q", "output": "a",
     "metrics": {"start": 0.0, "end": 3.0}},
    {"id": "l1", "span_id": "l1", "span_attributes": {"type": "llm", "name": "gpt"}, "input": "p1", "output": "o1",
     "metadata": {"model": {"name": "m"}, "flag": True}, "metrics": {"start": 0.0, "end": 1.0}},
    {"id": "l2", "span_id": "l2", "span_attributes": {"type": "llm", "name": "claude"}, "input": "p2", "output": "o2",
     "metadata": {"flag": 1}, "error": "boom", "metrics": {"start": 1.0, "end": 3.0}},
    {"id": "sc", "span_id": "sc", "span_attributes": {"type": "score", "purpose": "scorer"}},
]


def trace_item(root="root"):
    return TransformItem(ref={"origin": origin(f"{root}-row"), "root_span_id": root}, spans=[dict(s, root_span_id=root) for s in SPANS])


# -- arguments -------------------------------------------------------------------------------------


def test_call_args_follow_sdk_filtering():
    kwargs = {"input": 1, "output": 2, "expected": None, "metadata": {}, "trace": "T", "id": "x"}
    assert call_args(lambda input, output: None, kwargs) == ([], {"input": 1, "output": 2})
    assert call_args(lambda input, **rest: None, kwargs)[1] == kwargs
    assert call_args(lambda x, y=5: None, kwargs) == ([], {"x": 1})  # legacy fallback; y keeps its default
    assert call_args(lambda trace, foo: None, kwargs)[1] == {"trace": "T", "foo": 1}
    assert call_args(lambda: None, kwargs) == ([], {})
    assert call_args(lambda input, /, id: None, kwargs) == ([1], {"id": "x"})


def test_span_scope_sync_transform_gets_bt_kwargs_and_fallback_ids():
    seen = []

    def transform(id, input, output, metadata, expected, trace):
        seen.append((id, input, output, metadata, expected, trace.get_configuration()))
        return {"input": input, "expected": output}

    stream = transform_items(make_spec(transform), [span_item(0), span_item(1)], max_concurrency=2)
    rows = list(stream)
    assert rows == [
        {"id": "s0", "input": 0, "expected": 0, "origin": origin("s0")},
        {"id": "s1", "input": 1, "expected": 10, "origin": origin("s1")},
    ]
    assert seen[0][0] == "s0" and seen[0][3] == {"i": 0} and seen[0][4] is None
    assert seen[0][5] == {"object_type": "project_logs", "object_id": "proj", "root_span_id": "root"}
    assert (stream.stats.candidates, stream.stats.rows, stream.stats.skipped) == (2, 2, 0)


def test_trace_scope_gets_only_trace_and_nones_and_root_fallback():
    async def transform(input, output, expected, metadata, trace, **rest):
        assert (input, output, expected, metadata) == (None, None, None, None)
        assert "id" not in rest
        llm = await trace.get_spans(span_type=["llm"])
        return [{"input": span.input, "expected": span.output} for span in llm]

    rows = list(transform_items(make_spec(transform, scope="trace"), [trace_item("R")], max_concurrency=1))
    assert [(r["id"], r["input"]) for r in rows] == [("R:0", "p1"), ("R:1", "p2")]
    assert all(r["origin"]["id"] == "R-row" for r in rows)


def test_pulled_jsonl_dicts_are_accepted():
    line = json.loads(json.dumps(span_item(3).to_json()))
    rows = list(transform_items(make_spec(lambda input: {"input": input}), [line], max_concurrency=1))
    assert rows == [{"id": "s3", "input": 3, "origin": origin("s3")}]


# -- concurrency, order, streaming ---------------------------------------------------------------------


def test_async_transforms_run_concurrently_and_keep_order():
    in_flight = 0
    peak = 0

    async def transform(input):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02 * ((20 - input) % 5))  # later items often finish first
        in_flight -= 1
        return {"input": input}

    rows = list(transform_items(make_spec(transform), [span_item(i) for i in range(20)], max_concurrency=4))
    assert [r["input"] for r in rows] == list(range(20))
    assert peak == 4


def test_sync_transforms_run_in_a_thread_pool():
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def transform(input):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.03)
        with lock:
            in_flight -= 1
        return {"input": input}

    start = time.monotonic()
    rows = list(transform_items(make_spec(transform), [span_item(i) for i in range(12)], max_concurrency=3))
    assert [r["input"] for r in rows] == list(range(12))
    assert peak == 3
    assert time.monotonic() - start < 12 * 0.03


def test_stream_pulls_items_lazily_and_can_stop_early():
    pulled = 0

    def items():
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield span_item(i)

    stream = transform_items(make_spec(lambda input: {"input": input}), items(), max_concurrency=2)
    first = [next(stream)["input"] for _ in range(5)]
    assert first == [0, 1, 2, 3, 4]
    assert pulled <= 5 + 2 * 2 + 1  # bounded in-flight window, not the whole input
    stream.close()
    assert list(stream) == []


def test_defaults_come_from_pipeline_options():
    peak = 0
    in_flight = 0

    async def transform(input):
        nonlocal peak, in_flight
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return None

    stream = transform_items(make_spec(transform, max_concurrency=2), [span_item(i) for i in range(6)])
    assert list(stream) == []
    assert peak == 2 and stream.stats.candidates == 6 and stream.stats.rows == 0


# -- error policy ------------------------------------------------------------------------------------


def flaky(input):
    if input % 3 == 1:
        raise ValueError(f"bad input {input}")
    return {"input": input}


def test_skip_policy_records_errors_and_continues(tmp_path):
    errors = tmp_path / "out" / "errors.jsonl"
    progress = []
    stream = transform_items(
        make_spec(flaky), [span_item(i) for i in range(7)], max_concurrency=3, on_error="skip",
        errors_path=errors, on_progress=lambda s: progress.append(s.candidates),
    )
    rows = list(stream)
    assert [r["input"] for r in rows] == [0, 2, 3, 5, 6]
    assert (stream.stats.candidates, stream.stats.rows, stream.stats.skipped) == (7, 5, 2)
    assert progress == list(range(1, 8))
    lines = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [line["ref"]["id"] for line in lines] == ["s1", "s4"]
    assert lines[0]["ref"]["root_span_id"] == "root"
    assert lines[0]["error"] == "ValueError: bad input 1"
    assert "in flaky" in lines[0]["traceback"] and "raise ValueError" in lines[0]["traceback"]
    assert "asyncio" not in lines[0]["traceback"]
    with pytest.raises(TransformError, match="max_error_rate"):
        stream.stats.check_error_rate(0.05)
    stream.stats.check_error_rate(0.5)


async def async_flaky(input):
    return flaky(input)


@pytest.mark.parametrize("transform", [flaky, async_flaky], ids=["sync", "async"])
def test_failure_traceback_shows_the_users_frames_and_trims_the_engines(tmp_path, transform):
    errors = tmp_path / "errors.jsonl"
    stream = transform_items(make_spec(transform), [span_item(1)], on_error="skip", errors_path=errors)
    assert list(stream) == []
    text = json.loads(errors.read_text())["traceback"]
    assert "in flaky" in text and "raise ValueError" in text
    assert transform_module.__file__ not in text and "asyncio" not in text


def test_skip_policy_requires_an_errors_path():
    with pytest.raises(ValueError, match="errors_path"):
        transform_items(make_spec(flaky), [], on_error="skip")


def test_fail_policy_names_the_ref_with_traceback(tmp_path):
    errors = tmp_path / "errors.jsonl"
    stream = transform_items(make_spec(flaky), [span_item(i) for i in range(5)], max_concurrency=2, errors_path=errors)
    assert next(stream) == {"id": "s0", "input": 0, "origin": origin("s0")}
    with pytest.raises(TransformError) as info:
        next(stream)
    message = str(info.value)
    assert "root_span_id='root'" in message and "id='s1'" in message
    assert "ValueError: bad input 1" in message and "in flaky" in message
    assert "on_error='skip'" in message
    assert info.value.ref["id"] == "s1" and "raise ValueError" in info.value.traceback_text
    assert json.loads(errors.read_text())["ref"]["id"] == "s1"
    assert list(stream) == []


def test_invalid_rows_go_through_the_error_policy(tmp_path):
    def transform(input):
        return {"input": input, "output": 1} if input == 1 else {"input": input}

    errors = tmp_path / "errors.jsonl"
    stream = transform_items(make_spec(transform), [span_item(i) for i in range(3)], on_error="skip", errors_path=errors)
    assert [r["input"] for r in stream] == [0, 2]
    assert "'output'" in json.loads(errors.read_text())["error"]
    # validate=False keeps bt's transform behaviour (extra keys pass through)
    assert [r.get("output") for r in transform_items(make_spec(transform), [span_item(1)], validate=False)] == [1]


def test_non_object_result_is_an_item_error():
    with pytest.raises(TransformError, match="Dataset pipeline transform must return an object row."):
        list(transform_items(make_spec(lambda input: "text"), [span_item(0)]))


# -- span lookup through the trace ---------------------------------------------------------------------


def test_missing_span_payload_is_found_in_the_fetched_trace_once_per_trace():
    calls = []

    def fetch_trace(root_span_id):
        calls.append(root_span_id)
        time.sleep(0.01)
        return [dict(span_item(i).span) for i in range(4)]

    items = [span_item(i, payload=False) for i in range(4)]
    spec = make_spec(lambda input, output: {"input": input, "expected": output})
    rows = list(transform_items(spec, items, trace_factory=make_trace_factory(fetch_trace), max_concurrency=4))
    assert [(r["id"], r["expected"]) for r in rows] == [("s0", 0), ("s1", 10), ("s2", 20), ("s3", 30)]
    assert calls == ["root"]


def test_span_not_in_trace_fails_like_bt():
    factory = make_trace_factory(lambda root: [{"id": "other", "span_id": "other"}])
    with pytest.raises(TransformError, match=r"Source span row 's0' was not found in hydrated trace\."):
        list(transform_items(make_spec(lambda input: {}), [span_item(0, payload=False)], trace_factory=factory))


def test_offline_trace_without_spans_explains():
    async def transform(trace):
        await trace.get_spans()

    with pytest.raises(TransformError, match="TraceUnavailableError"):
        list(transform_items(make_spec(transform), [span_item(0)]))


# -- PipelineTrace -----------------------------------------------------------------------------------


def run(coro):
    return asyncio.run(coro)


def ids(spans):
    return [span.id for span in spans]


def test_trace_get_spans_over_prefetched_spans():
    trace = PipelineTrace(object_id="proj", root_span_id="root", spans=SPANS)
    assert trace.get_configuration() == {"object_type": "project_logs", "object_id": "proj", "root_span_id": "root"}
    assert trace == {"trace_ref": trace.get_configuration()}
    llm = run(trace.get_spans(span_type=["llm"]))
    assert all(isinstance(span, SpanData) for span in llm)
    assert ids(llm) == ["l1", "l2"] and llm[0].input == "p1" and llm[0].span_attributes["name"] == "gpt"
    assert ids(run(trace.get_spans())) == ["r", "l1", "l2"]
    assert ids(run(trace.get_spans(include_scorers=True))) == ["r", "l1", "l2", "sc"]
    assert ids(run(trace.get_spans(span_type=[]))) == ["r", "l1", "l2"]  # direct [] = no constraint
    assert run(trace.get_spans(filters={"span_type": []})) == []
    assert ids(run(trace.get_spans(filters={"name": ["claude"]}))) == ["l2"]
    assert ids(run(trace.get_spans(filters={"has_error": True}))) == ["l2"]
    assert ids(run(trace.get_spans(filters={"has_error": False}))) == ["r", "l1"]
    assert ids(run(trace.get_spans(filters={"metadata": {"model": {"name": "m"}}}))) == ["l1"]
    assert ids(run(trace.get_spans(filters={"metadata": {"flag": True}}))) == ["l1"]  # no bool/number coercion
    assert ids(run(trace.get_spans(filters={"metadata": {"flag": 1}}))) == ["l2"]
    assert ids(run(trace.get_spans(filters={"metadata": {"flag": None}}))) == ["r"]
    assert ids(run(trace.get_spans(filters={"duration": {"min": 1.5}}))) == ["r", "l2"]
    assert ids(run(trace.get_spans(filters={"duration": {"max": 1}}))) == ["l1"]
    spans = run(trace.get_spans())
    spans[0].input = "mutated"
    assert run(trace.get_spans())[0].input == "q"  # fresh objects each call


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"span_type": ["llm"], "filters": {"span_type": ["llm"]}}, "both"),
        ({"filters": {"nope": 1}}, "Unsupported span filter fields"),
        ({"filters": {"name": "x"}}, "list of strings"),
        ({"filters": {"has_error": 1}}, "boolean"),
        ({"filters": {"duration": {"min": float("inf")}}}, "finite"),
        ({"filters": "x"}, "object"),
    ],
)
def test_trace_filter_validation(kwargs, message):
    trace = PipelineTrace(object_id="proj", root_span_id="root", spans=SPANS)
    with pytest.raises(ValueError, match=message):
        run(trace.get_spans(**kwargs))


def test_trace_fetches_once_shared_across_concurrent_callers_and_retries_failures():
    calls = 0

    async def fetch(root):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ConnectionError("flaky")
        return SPANS

    trace = PipelineTrace(object_id="proj", root_span_id="root", fetch_trace=fetch)
    with pytest.raises(ConnectionError):
        run(trace.get_spans())

    async def many():
        return await asyncio.gather(*(trace.get_spans(span_type=["llm"]) for _ in range(5)))

    results = run(many())
    assert calls == 2 and all(ids(r) == ["l1", "l2"] for r in results)
    assert trace.spans_loaded


def test_trace_get_thread_is_explicitly_unsupported():
    trace = PipelineTrace(object_id="proj", root_span_id="root", spans=[])
    with pytest.raises(NotImplementedError, match="get_spans"):
        run(trace.get_thread())
    with pytest.raises(TraceUnavailableError):
        run(PipelineTrace(object_id="p", root_span_id="r").get_spans())


def test_stats_error_rate():
    stats = TransformStats(candidates=10, skipped=1)
    assert stats.error_rate == 0.1


def test_sync_transform_can_use_the_trace_from_its_worker_thread():
    calls = []

    def fetch_trace(root):
        calls.append(root)
        time.sleep(0.02)
        return [dict(s, root_span_id=root) for s in SPANS]

    def transform(input, trace):
        llm = asyncio.run(trace.get_spans(span_type=["llm"]))
        return {"input": input, "metadata": {"llm": [span.span_id for span in llm]}}

    rows = list(
        transform_items(make_spec(transform), [span_item(i) for i in range(6)],
                        trace_factory=make_trace_factory(fetch_trace), max_concurrency=3)
    )
    assert [r["metadata"]["llm"] for r in rows] == [["l1", "l2"]] * 6
    assert calls == ["root"]


def test_fast_sync_transforms_move_inline_and_slow_ones_stay_in_the_pool():
    consumer = threading.current_thread().name
    seen_fast: list[str] = []

    def fast(input):
        seen_fast.append(threading.current_thread().name)
        return {"input": input}

    rows = list(transform_items(make_spec(fast), (span_item(i) for i in range(200)), max_concurrency=4))
    assert [r["input"] for r in rows] == list(range(200))
    # the first calls are timed on pool threads; once measured fast they run in the consuming thread
    assert seen_fast[0] != consumer and seen_fast[-1] == consumer and seen_fast.count(consumer) > 100

    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow(input):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.01)
        with lock:
            in_flight -= 1
        return {"input": input}

    rows = list(transform_items(make_spec(slow), (span_item(i) for i in range(60)), max_concurrency=4))
    assert [r["input"] for r in rows] == list(range(60)) and peak == 4


def test_a_transform_that_turns_slow_goes_back_to_the_pool():
    consumer = threading.current_thread().name
    threads: list[str] = []

    def sometimes_slow(input):
        threads.append(threading.current_thread().name)
        if input >= 100:
            time.sleep(0.02)
        return {"input": input}

    rows = list(transform_items(make_spec(sometimes_slow), (span_item(i) for i in range(140)), max_concurrency=4))
    assert [r["input"] for r in rows] == list(range(140))
    assert consumer in threads[32:100] and threads[-1] != consumer


def test_a_trace_is_built_only_for_transforms_that_take_one():
    built = []

    def counting_factory(item):
        built.append(item.ref["id"])
        return make_trace_factory()(item)

    def no_trace(input, output):
        return {"input": input, "expected": output}

    def with_trace(input, trace):
        return {"input": input, "metadata": {"root": trace.get_configuration()["root_span_id"]}}

    def with_kwargs(input, **rest):
        return {"input": input, "metadata": {"keys": sorted(rest)}}

    items = [span_item(i) for i in range(3)]
    rows = list(transform_items(make_spec(no_trace), items, trace_factory=counting_factory))
    assert [r["expected"] for r in rows] == [0, 10, 20] and built == []
    rows = list(transform_items(make_spec(with_trace), items, trace_factory=counting_factory))
    assert [r["metadata"]["root"] for r in rows] == ["root"] * 3 and built == ["s0", "s1", "s2"]
    built.clear()
    rows = list(transform_items(make_spec(with_kwargs), items, trace_factory=counting_factory))
    assert rows[0]["metadata"]["keys"] == ["expected", "id", "metadata", "output", "trace"] and len(built) == 3


def test_a_ref_without_a_root_span_id_is_an_item_error_even_when_no_trace_is_needed(tmp_path):
    item = TransformItem(ref={"id": "x", "origin": origin("x")}, span={"id": "x", "input": 1})
    stream = transform_items(make_spec(lambda input: {"input": input}), [item, span_item(1)],
                             on_error="skip", errors_path=tmp_path / "errors.jsonl")
    assert [r["input"] for r in stream] == [1]
    (line,) = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert "missing root_span_id" in line["error"]


def test_a_transform_measured_fast_starts_inline_in_the_next_stream_without_threads():
    seen: list[str] = []

    def fast(input):
        seen.append(threading.current_thread().name)
        return {"input": input}

    list(transform_items(make_spec(fast), (span_item(i) for i in range(100)), max_concurrency=4))
    seen.clear()
    before = {t.name for t in threading.enumerate()}
    stream = transform_items(make_spec(fast), (span_item(i) for i in range(5)), max_concurrency=4)
    assert [r["input"] for r in stream] == list(range(5))
    # the next partition's stream runs every call in the consuming thread, starting no pool or loop
    assert set(seen) == {threading.current_thread().name}
    assert not {t.name for t in threading.enumerate()} - before
