"""The documented TypeScript example end to end: the CLI against the served plane, the Dagster
assets on the embedded plane; its rows equal the Python example's, with the same API requests."""

from __future__ import annotations

import json
from pathlib import Path

import braintrust
import dagster as dg
import pytest

from conftest import ServedPlane, use_as_braintrust
from helpers import EXAMPLES, REPO, write_pipeline
from pipelines_repo.cli.main import main as cli
from pipelines_repo.engine import node_env, node_loader
from pipelines_repo.orchestration import build_definitions
from test_dagster_materialize import Plane, expected_support_cases, materialize, read_dataset

pytestmark = pytest.mark.skipif(node_env._node_binary() is None, reason="needs Node 18+ (.ci/run installs it)")

PIPELINE_TS = REPO / "tests" / "data" / "pipeline.ts"
PROJECT = "Customer Support"


@pytest.fixture(scope="module")
def logged(served_plane: ServedPlane) -> str:
    """30 traces (a flagged root every third one, two llm children each); returns the project id."""
    braintrust.login(app_url=served_plane.url, api_key=served_plane.api_key, force_login=True)
    logger = braintrust.init_logger(project=PROJECT, app_url=served_plane.url, api_key=served_plane.api_key)
    for i in range(30):
        metadata = {"flagged": i % 3 == 0, "model": "gpt-4o", "user_id": f"u{i % 4}", "topic": "refund"}
        with logger.start_span(name="support_request", type="task", input={"q": i}, metadata=metadata) as root:
            for step in ("classify", "respond"):
                with root.start_span(name=step, type="llm", input=[{"role": "user", "content": str(i)}]) as llm:
                    llm.log(output={"role": "assistant", "content": f"{step} {i}"})
            root.log(output={"answer": i})
    logger.flush()
    return logger.project.id


@pytest.fixture(autouse=True)
def env(served_plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(node_loader.CACHE_ENV, str(tmp_path / "cache"))
    yield use_as_braintrust(served_plane, monkeypatch, tmp_path)
    node_loader.shutdown_runners()


def run(path: Path, dataset: str, *extra: str) -> dict:
    args = ["datasets", "pipeline", "run", str(path), "--window", "1d", "--no-limit", "--target-dataset", dataset, *extra]
    assert cli([*args, "--json", "-q"]) == 0
    return {}


def rows(plane: ServedPlane, dataset: str) -> dict[str, dict]:
    found = braintrust.init_dataset(project=PROJECT, name=dataset, app_url=plane.url, api_key=plane.api_key)
    return {r["id"]: {k: r.get(k) for k in ("input", "expected", "metadata", "tags", "origin")} for r in found}


def stats(plane: ServedPlane) -> dict[str, int]:
    with plane.client() as http:
        return http.get("/local/stats").json()["requests"]


def diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_the_documented_example_runs_unchanged_and_its_rows_equal_the_python_examples(served_plane, logged) -> None:
    before = stats(served_plane)
    run(EXAMPLES / "support_cases.py", "cases py")
    middle = stats(served_plane)
    run(PIPELINE_TS, "cases ts")
    after = stats(served_plane)
    py, ts = rows(served_plane, "cases py"), rows(served_plane, "cases ts")
    assert len(py) == 10 and ts == py
    assert diff(after, middle) == diff(middle, before)  # the same API requests, route by route


SPANS_PY = '''
from braintrust import DatasetPipeline

async def to_row(id, input, trace):
    llm = await trace.get_spans(span_type=["llm"])
    return {"input": input, "expected": llm[-1].output if llm else None, "metadata": {"n": len(llm)}}

DatasetPipeline(name="spans", source={"project_name": "Customer Support", "scope": "span"}, transform=to_row,
                target={"project_name": "Customer Support", "dataset_name": "spans"})
'''

SPANS_TS = '''
import { DatasetPipeline } from "braintrust";
DatasetPipeline({ name: "spans", source: { projectName: "Customer Support", scope: "span" },
  transform: async ({ id, input, trace }) => {
    const llm = await trace.getSpans({ spanType: ["llm"] });
    return { input, expected: llm.length ? llm[llm.length - 1].output : null, metadata: { n: llm.length } };
  },
  target: { projectName: "Customer Support", datasetName: "spans" } });
'''


def test_requests_per_1000_spans_match_the_python_path_when_transforms_call_get_spans(served_plane, logged, tmp_path) -> None:
    py = write_pipeline(tmp_path / "py", "spans.py", SPANS_PY)
    ts = write_pipeline(tmp_path / "ts", "spans.ts", SPANS_TS)
    before = stats(served_plane)
    run(py, "spans py")
    middle = stats(served_plane)
    run(ts, "spans ts")
    after = stats(served_plane)
    py_rows, ts_rows = rows(served_plane, "spans py"), rows(served_plane, "spans ts")
    assert len(py_rows) == 90 and ts_rows == py_rows
    assert diff(after, middle) == diff(middle, before)
    per_1000 = 1000 * sum(diff(after, middle).values()) / len(ts_rows)
    assert per_1000 == 1000 * sum(diff(middle, before).values()) / len(py_rows)


def test_two_pipelines_in_one_file_select_with_name(served_plane, logged, tmp_path, capsys) -> None:
    body = PIPELINE_TS.read_text() + PIPELINE_TS.read_text().replace('"support-cases"', '"second"')
    path = write_pipeline(tmp_path, "two.ts", body)
    capsys.readouterr()
    assert cli(["datasets", "pipeline", "run", str(path), "--window", "1d", "--json", "-q"]) != 0
    assert "Multiple dataset pipelines found (support-cases, second). Pass --name." in capsys.readouterr().err
    run(path, "second ts", "--name", "second")
    assert len(rows(served_plane, "second ts")) == 10


def test_the_documented_example_as_dagster_assets_on_the_local_plane(isolated_home, instance, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(node_loader.CACHE_ENV, str(tmp_path / "cache"))
    plane = Plane(isolated_home)
    pipelines = tmp_path / "pipelines"
    write_pipeline(pipelines, "pipeline.ts", PIPELINE_TS.read_text())
    defs = build_definitions(pipelines, strict=True)
    day = plane.day(2)
    result = materialize(defs, "support_cases", instance, partition=day)
    assert result.success
    got, _ = read_dataset(plane.db, "Support cases")
    assert got == expected_support_cases(plane, day, day) and got
    code_versions = {node.key: node.code_version for node in defs.resolve_asset_graph().asset_nodes}
    transformed = dg.AssetKey(["support_cases", "transformed_rows"])
    assert transformed in code_versions and code_versions[transformed]
