"""The example pipelines end to end: logs written by the official SDK, rows read back with it.

The served local plane plays Braintrust; the CLI reaches it exactly as it would reach Braintrust
(BRAINTRUST_API_KEY + BRAINTRUST_APP_URL). Expected rows are computed here from what was logged.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import braintrust
import pytest

from conftest import REPO, ServedPlane, use_as_braintrust
from pipelines_repo.cli.main import main as cli

PIPELINES = REPO / "pipelines_repo" / "pipelines"
PROJECT = "Customer Support"


@pytest.fixture(scope="module")
def plane(served_plane: ServedPlane) -> ServedPlane:
    return served_plane


@pytest.fixture(scope="module")
def logged(plane: ServedPlane) -> dict:
    """Log 40 support traces with the SDK; return what was logged, keyed for expectations."""
    braintrust.login(app_url=plane.url, api_key=plane.api_key, force_login=True)
    logger = braintrust.init_logger(project=PROJECT, app_url=plane.url, api_key=plane.api_key)
    rng = random.Random(11)
    roots, llm_calls = [], {}
    for i in range(40):
        metadata = {"flagged": i % 5 == 0, "model": rng.choice(["gpt-4o", "gpt-4o-mini"]), "user_id": f"u{i % 7}", "topic": "refund"}
        scores = {"user_rating": round(rng.random(), 2), "correctness": round(rng.random(), 2)}
        question = {"question": f"refund for order {i}?"}
        answer = {"answer": f"refund {i} approved"}
        with logger.start_span(name="support_request", type="task", input=question, metadata=metadata, tags=["support"]) as root:
            calls = []
            for step in ("classify", "respond"):
                messages = [{"role": "user", "content": question["question"]}, {"role": "system", "content": step}]
                reply = {"role": "assistant", "content": f"{step} {i}"}
                with root.start_span(name=step, type="llm", input=messages, metadata={"model": metadata["model"]}) as llm:
                    llm.log(output=reply, metrics={"tokens": 10 + i})
                calls.append((messages, reply))
            root.log(output=answer, scores=scores)
            roots.append({"id": root.id, "root_span_id": root.root_span_id, "input": question, "output": answer,
                          "metadata": metadata, "scores": scores})
            llm_calls[root.root_span_id] = calls
    logger.flush()
    return {"project_id": logger.project.id, "roots": roots, "llm_calls": llm_calls}


@pytest.fixture
def as_braintrust(plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI's environment: the served plane as 'real' Braintrust; artifacts under tmp_path."""
    return use_as_braintrust(plane, monkeypatch, tmp_path)


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> dict:
    capsys.readouterr()
    code = cli([*args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out.strip().splitlines()[-1])


def dataset_rows(plane: ServedPlane, name: str) -> tuple[dict[str, dict], str]:
    dataset = braintrust.init_dataset(project=PROJECT, name=name, app_url=plane.url, api_key=plane.api_key)
    rows = {r["id"]: r for r in dataset}
    return rows, str(dataset.version)


def expected_support_cases(logged: dict) -> dict[str, dict]:
    return {
        r["id"]: {
            "input": r["input"], "expected": r["output"], "tags": ["flagged"],
            "metadata": {"model": r["metadata"]["model"], "topic": "refund", "user_id": r["metadata"]["user_id"]},
        }
        for r in logged["roots"] if r["metadata"]["flagged"]
    }


def expected_llm_traces(logged: dict) -> dict[str, dict]:
    out = {}
    for r in logged["roots"]:
        if r["scores"]["correctness"] >= 0.7:
            calls = logged["llm_calls"][r["root_span_id"]]
            out[r["root_span_id"]] = {"input": {"messages": calls[-1][0], "calls": 2}, "expected": calls[-1][1]}
    return out


def expected_golden(logged: dict) -> dict[str, dict]:
    return {
        r["id"]: {"input": r["input"], "expected": r["output"], "tags": ["user-rated"],
                  "metadata": {"user_id": r["metadata"]["user_id"], "source_span": r["id"]}}
        for r in logged["roots"] if r["scores"]["user_rating"] > 0.8
    }


CASES = [
    ("support_cases.py", "Support cases", expected_support_cases),
    ("trace_llm_calls.py", "Correct LLM traces", expected_llm_traces),
    ("user_feedback.py", "Golden answers", expected_golden),
]


def _assert_rows(rows: dict[str, dict], expected: dict[str, dict], project_id: str) -> None:
    assert expected, "the seeded logs should give every example pipeline something to do"
    assert set(rows) == set(expected)
    for row_id, want in expected.items():
        row = rows[row_id]
        for key, value in want.items():
            assert row[key] == value, (row_id, key)
        origin = row["origin"]
        assert origin["object_type"] == "project_logs" and origin["object_id"] == project_id
        assert origin["_xact_id"] and origin["created"]


@pytest.mark.parametrize("file, dataset, expectation", CASES, ids=[c[0] for c in CASES])
def test_run_writes_the_specified_rows_and_a_rerun_writes_nothing(
    plane, logged, as_braintrust, capsys, file, dataset, expectation
) -> None:
    summary = run_cli(capsys, "datasets", "pipeline", "run", str(PIPELINES / file), "--window", "1d", "--no-limit")
    expected = expectation(logged)
    rows, version = dataset_rows(plane, dataset)
    _assert_rows(rows, expected, logged["project_id"])
    assert summary["rows"] == len(expected)
    # Trace scope: the origin is the trace's root span.
    if file == "trace_llm_calls.py":
        root_ids = {r["root_span_id"]: r["id"] for r in logged["roots"]}
        assert all(row["origin"]["id"] == root_ids[rid] for rid, row in rows.items())
    else:
        assert all(row["origin"]["id"] == rid for rid, row in rows.items())

    rerun = run_cli(capsys, "datasets", "pipeline", "run", str(PIPELINES / file), "--window", "1d", "--no-limit")
    again, version_two = dataset_rows(plane, dataset)
    assert set(again) == set(rows) and len(again) == len(rows)
    assert version_two == version and (rerun["rows"], rerun["unchanged"]) == (0, len(expected))  # no new version
    assert {k: (r["input"], r["expected"]) for k, r in again.items()} == {k: (r["input"], r["expected"]) for k, r in rows.items()}


@pytest.mark.parametrize("file, dataset, expectation", CASES, ids=[c[0] for c in CASES])
def test_staged_pull_transform_push_matches(plane, logged, as_braintrust, capsys, file, dataset, expectation) -> None:
    path = str(PIPELINES / file)
    staged = f"{dataset} (staged)"
    pulled = run_cli(capsys, "datasets", "pipeline", "pull", path, "--window", "1d", "--no-limit")
    pulled_path = (as_braintrust / pulled["out"]).resolve()
    assert pulled_path.name == "pulled.jsonl" and pulled_path.is_relative_to(as_braintrust.resolve() / "bt-sync")
    first_ref = json.loads(pulled_path.read_text().splitlines()[0])
    assert set(first_ref) == ({"id", "origin", "root_span_id"} if file != "trace_llm_calls.py" else {"origin", "root_span_id"})
    transformed = run_cli(capsys, "datasets", "pipeline", "transform", path)  # --in: the latest pull
    assert (as_braintrust / transformed["out"]).resolve().parent == pulled_path.parent
    run_cli(capsys, "datasets", "pipeline", "push", path, "--target-dataset", staged)  # --in: the latest transform
    rows, _ = dataset_rows(plane, staged)
    _assert_rows(rows, expectation(logged), logged["project_id"])
