"""TS transforms through the unchanged TransformStream: arguments, trace.getSpans, errors, crashes.

Items carry their spans (as the pull stage embeds them), so these run offline against one Node
runner per file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from helpers import write_pipeline
from pipelines_repo.engine import node_env, node_loader
from pipelines_repo.engine.items import TransformItem
from pipelines_repo.engine.loader import load_pipeline_file
from pipelines_repo.engine.node_runner import NodeRunnerCrashedError
from pipelines_repo.engine.transform import TransformError, transform_items

pytestmark = pytest.mark.skipif(node_env._node_binary() is None, reason="needs Node 18+ (.ci/run installs it)")

HEADER = 'import { DatasetPipeline } from "braintrust";\n'


def spans(root: str) -> list[dict]:
    return [
        {"id": f"{root}-root", "span_id": f"{root}-root", "root_span_id": root, "input": {"q": root}, "output": {"a": 1},
         "metadata": {"m": root}, "span_attributes": {"type": "task", "name": "request"}},
        {"id": f"{root}-llm", "span_id": f"{root}-llm", "root_span_id": root, "input": [{"role": "user"}],
         "output": {"role": "assistant", "content": f"hi {root}"}, "span_attributes": {"type": "llm", "name": "respond"}},
        {"id": f"{root}-score", "span_id": f"{root}-score", "root_span_id": root,
         "span_attributes": {"type": "score", "name": "judge", "purpose": "scorer"}},
    ]


def span_item(root: str, which: str = "root") -> TransformItem:
    row = next(s for s in spans(root) if s["id"] == f"{root}-{which}")
    origin = {"object_type": "project_logs", "object_id": "proj", "id": row["id"]}
    return TransformItem(ref={"id": row["id"], "root_span_id": root, "origin": origin}, spans=spans(root))


def trace_item(root: str) -> TransformItem:
    origin = {"object_type": "project_logs", "object_id": "proj", "id": f"{root}-root"}
    return TransformItem(ref={"root_span_id": root, "origin": origin}, spans=spans(root))


def load(tmp_path: Path, body: str, name: str = "p.ts", options: str = ""):
    text = HEADER + body + (f"\nexport const dagster = {options};\n" if options else "")
    (spec,) = load_pipeline_file(write_pipeline(tmp_path, name, text))
    return spec


@pytest.fixture(autouse=True)
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(node_loader.CACHE_ENV, str(tmp_path / "cache"))
    yield
    node_loader.shutdown_runners()


def test_span_scope_gets_the_span_fields_and_rows_get_fallback_ids_and_origin(tmp_path: Path) -> None:
    spec = load(tmp_path, """
DatasetPipeline({ name: "s", source: { projectName: "P" },
  transform: ({ id, input, output, expected, metadata, trace }) => [
    { input, expected: output, metadata: { id, m: metadata?.m, e: expected ?? null, cfg: trace.getConfiguration() } },
    { input: "second", origin: { object_type: "dataset", object_id: "ignored" } },
  ],
  target: { datasetName: "D" } });
""")
    rows = list(transform_items(spec, [span_item("r1")]))
    assert rows[0] == {
        "id": "r1-root:0", "input": {"q": "r1"}, "expected": {"a": 1},
        "metadata": {"id": "r1-root", "m": "r1", "e": None,
                     "cfg": {"object_type": "project_logs", "object_id": "proj", "root_span_id": "r1"}},
        "origin": {"object_type": "project_logs", "object_id": "proj", "id": "r1-root"},
    }
    assert rows[1]["id"] == "r1-root:1" and rows[1]["origin"]["object_type"] == "project_logs"


def test_trace_scope_gets_only_the_trace_and_async_get_spans_filters_like_the_sdk(tmp_path: Path) -> None:
    spec = load(tmp_path, """
DatasetPipeline({ name: "t", source: { projectName: "P", scope: "trace" },
  transform: async (args) => {
    const { trace } = args;
    const [all, llm, withScorers] = await Promise.all([
      trace.getSpans(), trace.getSpans({ spanType: ["llm"] }), trace.getSpans({ includeScorers: true })]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { input: Object.keys(args).sort(), expected: llm.at(-1).output,
             metadata: { all: all.length, scorers: withScorers.length, ids: all.map((s) => s.span_id) } };
  },
  target: { datasetName: "D" } });
""")
    rows = list(transform_items(spec, [trace_item(f"r{i}") for i in range(12)]))
    assert [row["id"] for row in rows] == [f"r{i}" for i in range(12)]  # input order; trace scope: root span id
    assert rows[3]["input"] == ["trace"]
    assert rows[3]["expected"] == {"role": "assistant", "content": "hi r3"}
    assert rows[3]["metadata"] == {"all": 2, "scorers": 3, "ids": ["r3-root", "r3-llm"]}


def test_async_transforms_overlap_up_to_max_concurrency(tmp_path: Path) -> None:
    import time

    spec = load(tmp_path, """
let active = 0, peak = 0;
DatasetPipeline({ name: "c", source: { projectName: "P" },
  transform: async ({ input, trace }) => {
    active++; peak = Math.max(peak, active);
    await trace.getSpans({ spanType: ["llm"] });
    await new Promise((resolve) => setTimeout(resolve, 100));
    active--;
    return { input, metadata: { peak } };
  },
  target: { datasetName: "D" } });
""", options="{ max_concurrency: 4 }")
    started = time.perf_counter()
    rows = list(transform_items(spec, [span_item(f"r{i}") for i in range(12)]))
    elapsed = time.perf_counter() - started
    assert max(row["metadata"]["peak"] for row in rows) == 4
    assert elapsed < 1.0 + 1.2  # 3 waves of 100 ms (+ the runner's start), not 12 sequential calls


THROWS = """
DatasetPipeline({ name: "e", source: { projectName: "P" },
  transform: ({ input }) => {
    console.log("user output", input);
    if (input.q === "r2") throw new TypeError("no answer for " + input.q);
    return { input };
  },
  target: { datasetName: "D" } });
"""


def test_a_throw_under_fail_raises_naming_the_ref_and_the_js_error(tmp_path: Path) -> None:
    spec = load(tmp_path, THROWS)
    stream = transform_items(spec, [span_item(f"r{i}") for i in range(5)], on_error="fail")
    with pytest.raises(TransformError) as info:
        list(stream)
    assert info.value.error.startswith("NodeTransformError: TypeError: no answer for r2 (at ")
    assert "p.ts" in info.value.error and info.value.ref["id"] == "r2-root"
    assert stream.stats.rows == 2


def test_a_throw_under_skip_is_recorded_and_console_output_goes_to_the_logs(tmp_path: Path, caplog) -> None:
    spec = load(tmp_path, THROWS)
    errors = tmp_path / "errors.jsonl"
    with caplog.at_level(logging.INFO, logger="pipelines_repo.node"):
        stream = transform_items(spec, [span_item(f"r{i}") for i in range(5)], on_error="skip", errors_path=errors)
        rows = list(stream)
    assert [row["input"]["q"] for row in rows] == ["r0", "r1", "r3", "r4"] and stream.stats.skipped == 1
    (line,) = [json.loads(x) for x in errors.read_text().splitlines()]
    assert line["ref"]["id"] == "r2-root" and "no answer for r2" in line["error"]
    assert any("user output" in record.getMessage() for record in caplog.records)


def test_a_crash_fails_the_stage_under_either_policy_and_the_next_run_restarts(tmp_path: Path) -> None:
    spec = load(tmp_path, """
DatasetPipeline({ name: "x", source: { projectName: "P" },
  transform: ({ input }) => {
    if (input.q === "r3") { console.error("about to die"); process.exit(7); }
    return { input };
  },
  target: { datasetName: "D" } });
""")
    stream = transform_items(spec, [span_item(f"r{i}") for i in range(6)], on_error="skip", errors_path=tmp_path / "e.jsonl")
    with pytest.raises(NodeRunnerCrashedError) as info:
        list(stream)
    message = str(info.value)
    assert "p.ts" in message and "exited with code 7" in message and "about to die" in message
    assert "Fix" in message or "fix" in message.lower()
    rows = list(transform_items(spec, [span_item("r0")]))  # a fresh process
    assert rows[0]["input"] == {"q": "r0"}


def test_a_bad_row_is_an_item_error(tmp_path: Path) -> None:
    spec = load(tmp_path, """
DatasetPipeline({ name: "b", source: { projectName: "P" }, transform: () => "not an object", target: { datasetName: "D" } });
""")
    with pytest.raises(TransformError, match="must return an object row"):
        list(transform_items(spec, [span_item("r0")]))
