"""Pipeline option `run_output`: the runtime output kept in `metadata.run_output`, with the span's ids.

Traces come in two ways, as users send them: the official braintrust SDK (`start_span` / `log`) and
the official OpenTelemetry SDK with its OTLP/HTTP exporter. Pipelines run through the CLI against the
served plane; rows are read back with the SDK's `init_dataset`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import braintrust
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from conftest import ServedPlane, use_as_braintrust
from helpers import write_pipeline
from pipelines_repo.cli.main import main as cli

PROJECT = "Runtime output"
OTEL_PROJECT = "Runtime output (otel)"


@pytest.fixture(scope="module")
def logged(served_plane: ServedPlane) -> dict:
    """Six traces: a root `task` span with an output and two `llm` children (classify, respond);
    traces 4 and 5 have a root without output."""
    braintrust.login(app_url=served_plane.url, api_key=served_plane.api_key, force_login=True)
    logger = braintrust.init_logger(project=PROJECT, app_url=served_plane.url, api_key=served_plane.api_key)
    traces = {}
    for i in range(6):
        with logger.start_span(name="request", type="task", input={"q": f"question {i}"}, metadata={"n": i}) as root:
            children = {}
            for step in ("classify", "respond"):
                with root.start_span(name=step, type="llm", input=[{"role": "user", "content": f"{step} {i}"}]) as llm:
                    llm.log(output={"role": "assistant", "content": f"{step} answer {i}"})
                children[step] = {"span_id": llm.span_id, "output": {"role": "assistant", "content": f"{step} answer {i}"}}
            if i < 4:
                root.log(output={"answer": f"final {i}"})
        traces[root.root_span_id] = {"root_id": root.id, "root_span_id": root.root_span_id, "root_span": root.span_id,
                                     "output": {"answer": f"final {i}"} if i < 4 else None, "children": children, "i": i}
    logger.flush()
    return traces


@pytest.fixture(autouse=True)
def env(served_plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return use_as_braintrust(served_plane, monkeypatch, tmp_path)


def run(tmp_path: Path, body: str, dataset: str) -> None:
    path = write_pipeline(tmp_path, f"{dataset}.py", body)
    assert cli(["datasets", "pipeline", "run", str(path), "--window", "1d", "--no-limit", "--json", "-q"]) == 0


def rows(plane: ServedPlane, dataset: str, project: str = PROJECT) -> list[dict]:
    return list(braintrust.init_dataset(project=project, name=dataset, app_url=plane.url, api_key=plane.api_key))


SPAN_SCOPE = '''
from pipelines_repo import DatasetPipeline

def to_row(id, input, output, expected, metadata):
    return {{"input": input, "expected": {{"curated": True}}, "metadata": {{"kept": 1}}}}

DatasetPipeline(name="{name}", source={{"project_name": "{project}", "filter": "{filter}", "scope": "span"}},
                transform=to_row, target={{"project_name": "{project}", "dataset_name": "{name}"}}, run_output={option})
'''

TRACE_SCOPE = '''
from pipelines_repo import DatasetPipeline

async def to_row(trace):
    spans = await trace.get_spans(span_type=["task"])
    return {{"input": spans[0].input, "metadata": {metadata}}}

DatasetPipeline(name="{name}", source={{"project_name": "{project}", "scope": "trace"}},
                transform=to_row, target={{"project_name": "{project}", "dataset_name": "{name}"}}, run_output={option})
'''


def test_span_scope_keeps_the_source_span_output_without_touching_expected(served_plane, logged, tmp_path) -> None:
    run(tmp_path, SPAN_SCOPE.format(name="span-true", project=PROJECT, filter="span_attributes.name = 'respond'", option="True"), "span-true")
    got = rows(served_plane, "span-true")
    by_root = {r["metadata"]["root_span_id"]: r for r in got}
    assert set(by_root) == set(logged)
    for root_span_id, trace in logged.items():
        row = by_root[root_span_id]
        assert row["expected"] == {"curated": True}
        assert row["metadata"]["kept"] == 1
        assert row["metadata"]["run_output"] == trace["children"]["respond"]["output"]
        assert row["metadata"]["span_id"] == trace["children"]["respond"]["span_id"]


def test_span_scope_with_a_span_type_takes_only_spans_of_that_type(served_plane, logged, tmp_path) -> None:
    run(tmp_path, SPAN_SCOPE.format(name="span-typed", project=PROJECT, filter="span_attributes.name = 'request' AND output IS NOT NULL",
                                    option="'llm'"), "span-typed")
    got = rows(served_plane, "span-typed")
    assert len(got) == 4 and all("run_output" not in r["metadata"] for r in got)
    # and spans of that type do keep theirs
    run(tmp_path, SPAN_SCOPE.format(name="span-typed-llm", project=PROJECT, filter="span_attributes.name = 'respond'",
                                    option="'llm'"), "span-typed-llm")
    by_root = {r["metadata"]["root_span_id"]: r["metadata"] for r in rows(served_plane, "span-typed-llm")}
    assert {root: meta["run_output"] for root, meta in by_root.items()} == {
        root: trace["children"]["respond"]["output"] for root, trace in logged.items()}


def test_trace_scope_takes_the_root_output_or_the_last_span_with_one(served_plane, logged, tmp_path) -> None:
    run(tmp_path, TRACE_SCOPE.format(name="trace-true", project=PROJECT, metadata="{}", option="True"), "trace-true")
    got = {r["metadata"]["root_span_id"]: r for r in rows(served_plane, "trace-true")}
    assert set(got) == set(logged)
    for root_span_id, trace in logged.items():
        meta = got[root_span_id]["metadata"]
        if trace["output"] is not None:
            assert (meta["run_output"], meta["span_id"]) == (trace["output"], trace["root_span"])
        else:  # the root said nothing: the last span that did
            assert (meta["run_output"], meta["span_id"]) == (trace["children"]["respond"]["output"], trace["children"]["respond"]["span_id"])
        assert "expected" not in got[root_span_id] or got[root_span_id]["expected"] is None


def test_trace_scope_with_a_span_type_takes_that_child_and_a_transform_value_wins(served_plane, logged, tmp_path) -> None:
    run(tmp_path, TRACE_SCOPE.format(name="trace-llm", project=PROJECT, metadata="{}", option="'llm'"), "trace-llm")
    got = {r["metadata"]["root_span_id"]: r["metadata"] for r in rows(served_plane, "trace-llm")}
    for root_span_id, trace in logged.items():
        assert got[root_span_id]["run_output"] == trace["children"]["respond"]["output"]
        assert got[root_span_id]["span_id"] == trace["children"]["respond"]["span_id"]
    run(tmp_path, TRACE_SCOPE.format(name="trace-own", project=PROJECT, metadata='{"run_output": "mine"}', option="'llm'"), "trace-own")
    assert {r["metadata"]["run_output"] for r in rows(served_plane, "trace-own")} == {"mine"}


def test_otel_traces_give_rows_with_run_output_and_span_ids(served_plane, tmp_path) -> None:
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{served_plane.url}/otel/v1/traces", timeout=10,
                                headers={"Authorization": f"Bearer {served_plane.api_key}", "x-bt-parent": f"project_name:{OTEL_PROJECT}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("run-output-test")
    expected = {}
    for i in range(3):
        with tracer.start_as_current_span("support_request") as root:
            root.set_attribute("braintrust.span_attributes.type", "task")
            root.set_attribute("braintrust.input_json", json.dumps({"question": f"q{i}"}))
            with tracer.start_as_current_span("chat") as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.prompt.0.role", "user")
                llm.set_attribute("gen_ai.prompt.0.content", f"q{i}")
                llm.set_attribute("gen_ai.completion", f"answer {i}")
            expected[f"{root.get_span_context().trace_id:032x}"] = f"{llm.get_span_context().span_id:016x}"
    provider.shutdown()
    run(tmp_path, TRACE_SCOPE.format(name="otel-llm", project=OTEL_PROJECT, metadata="{}", option="'llm'"), "otel-llm")
    got = rows(served_plane, "otel-llm", OTEL_PROJECT)
    assert len(got) == 3
    for row in got:
        meta = row["metadata"]
        assert meta["span_id"] == expected[meta["root_span_id"]]
        assert meta["run_output"] is not None and "answer" in json.dumps(meta["run_output"])
        assert row["input"]["question"].startswith("q")


def test_upload_mapping_can_target_run_output_and_it_survives_a_reupload(served_plane, tmp_path, capsys) -> None:
    path = tmp_path / "answers.csv"
    path.write_text("question,answer,model_said\nq1,a1,m1\nq2,a2,m2\n")
    name = f"mapped-{uuid.uuid4().hex[:6]}"
    args = ["datasets", "upload", str(path), "--project", PROJECT, "--dataset", name, "--input", "question",
            "--expected", "answer", "--metadata", "model_said", "--json"]
    assert cli(args) == 0
    capsys.readouterr()
    assert {r["input"]: r["metadata"] for r in rows(served_plane, name)} == {"q1": {"model_said": "m1"}, "q2": {"model_said": "m2"}}
    (tmp_path / "map.yaml").write_text("columns:\n  question: input\n  answer: expected\n  model_said: {to: metadata.run_output}\n")
    assert cli(["datasets", "upload", str(path), "--project", PROJECT, "--dataset", name + "-ro", "--map", str(tmp_path / "map.yaml"), "--json"]) == 0
    got = {r["input"]: r for r in rows(served_plane, name + "-ro")}
    assert got["q1"]["metadata"] == {"run_output": "m1"} and got["q1"]["expected"] == "a1"
    # a dataset's rows (exported as JSONL) upload again unchanged: run_output included
    exported = tmp_path / "export.jsonl"
    exported.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows(served_plane, name + "-ro")))
    capsys.readouterr()
    assert cli(["datasets", "upload", str(exported), "--project", PROJECT, "--dataset", name + "-ro", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["unchanged"], summary["added"], summary["updated"]) == (2, 0, 0)
