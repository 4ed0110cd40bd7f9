"""Eval files as assets: a pipeline's new dataset version runs `<eval>/experiment` on that version.

The eval file is written for `braintrust eval` (unchanged SDK calls); the run goes through the
SDK in a subprocess against the local plane of the test home (docs/BT_COMPAT.md §A.12).
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import dagster as dg

from helpers import EXAMPLES
from pipelines_repo.engine.loader import load_declarations
from pipelines_repo.orchestration import build_definitions
from pipelines_repo.orchestration.evals import CHECK_NAME, VERSION_TAG
from test_dagster_materialize import Plane, materialize, meta, plane  # noqa: F401 - the fixture

EXPERIMENT = dg.AssetKey(["support_evals", "experiment"])

EVAL_FILE = '''
from braintrust import Eval, init_dataset

dagster = {{"max_regression": 0.1}}

def task(input):
    # {quality}: "good" answers every case; "worse" fails every other one
    text = str(input)
    return "answer" if "{quality}" == "good" or sum(map(ord, text)) % 2 else "no"

def answered(input, output, expected):
    return 1.0 if output == "answer" else 0.0

Eval("Support Evals", data=init_dataset("Customer Support", "Support cases"), task=task, scores=[answered])
'''


def _write(directory: Path, quality: str) -> None:
    (directory / "eval_support.py").write_text(textwrap.dedent(EVAL_FILE.format(quality=quality)))


def _sensor_request(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.RunRequest, str]:
    sensor = defs.get_sensor_def("support_evals_on_new_dataset_version")
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1, result
    return result.run_requests[0], result.cursor


def _run_experiment(pipelines: Path, instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
    defs = build_definitions(pipelines, strict=True)
    return dg.materialize(defs.assets, selection=[EXPERIMENT], tags=tags, instance=instance,
                          resources={"braintrust": defs.resources["braintrust"]}, raise_on_error=False)


def _experiment_meta(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.materialization.asset_key == EXPERIMENT]
    return {k: meta(event.materialization, k) for k in event.materialization.metadata}


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_eval_file_loads_lazily_and_compiles_downstream_of_the_dataset(tmp_path: Path) -> None:
    _write(tmp_path, "good")
    (spec,) = load_declarations(tmp_path / "eval_support.py").declarations  # nothing evaluated, no request
    assert spec.name == "Support Evals" and spec.dataset.dataset_name == "Support cases" and spec.max_regression == 0.1
    shutil.copy(EXAMPLES / "support_cases.py", tmp_path)
    defs = build_definitions(tmp_path, strict=True)
    graph = defs.resolve_asset_graph()
    dataset = dg.AssetKey(["braintrust", "customer_support", "datasets", "support_cases"])
    assert graph.get(EXPERIMENT).parent_keys == {dataset}
    assert dg.AssetKey(["support_cases", "dataset_version"]) in graph.get(dataset).parent_keys
    assert defs.get_sensor_def("support_evals_on_new_dataset_version")


def test_new_dataset_version_runs_the_eval_and_the_regression_check(plane: Plane, instance: dg.DagsterInstance, tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    shutil.copy(EXAMPLES / "support_cases.py", pipelines)
    _write(pipelines, "good")
    defs = build_definitions(pipelines, strict=True)

    assert materialize(defs, "support_cases", instance, first=plane.day(9), last=plane.day(5)).success
    _, v1 = plane.dataset("Support cases")
    request, cursor = _sensor_request(defs, instance, None)
    assert request.tags[VERSION_TAG] == v1
    first = _run_experiment(pipelines, instance, request.tags)
    assert first.success
    m1 = _experiment_meta(first)
    assert m1["dataset_version"] == v1 and m1["score/answered"] == 1.0 and m1["compared_to"] == "(none)"
    assert m1["experiment_name"] and m1["experiment_url"].endswith(m1["experiment_name"].replace(" ", "%20"))
    assert _check(first).passed

    # A later version: the sensor asks for it; the worse task scores lower and fails the check.
    assert materialize(defs, "support_cases", instance, first=plane.day(4), last=plane.day(1)).success
    rows, v2 = plane.dataset("Support cases")
    assert v2 > v1
    request, _ = _sensor_request(defs, instance, cursor)
    assert request.tags[VERSION_TAG] == v2
    _write(pipelines, "worse")
    second = _run_experiment(pipelines, instance, request.tags)
    m2 = _experiment_meta(second)
    assert m2["dataset_version"] == v2 and m2["previous_dataset_version"] == v1
    assert m2["compared_to"] == m1["experiment_name"]
    assert m2["cases"] == len(rows)
    assert m2["score/answered"] < 0.9 and m2["score_diff/answered"] == m2["score/answered"] - 1.0
    assert m2["regressions/answered"] > 0
    check = _check(second)
    assert check.check_name == CHECK_NAME and not check.passed
