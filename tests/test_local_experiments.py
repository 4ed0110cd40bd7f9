"""The official SDK's `Eval()` against the served local plane, one subprocess per scenario.

The SDK's state is process-global, so each scenario runs in its own interpreter, pointed at the
plane exactly as at Braintrust (key + app URL). Scenarios share the plane (module fixture) and
build on each other's experiments, in file order. docs/BT_COMPAT.md §A.12.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid

import httpx
import jsonschema
import pytest

from conftest import ServedPlane
from helpers import REPO
from test_local_plane_api import SPEC

PROJECT = f"evals-{uuid.uuid4().hex[:6]}"

PRELUDE = f"""
import json, sys
import braintrust
from braintrust import Eval, init_dataset, init_experiment
PROJECT = {PROJECT!r}

def exact(input, output, expected):
    return 1.0 if output == expected else 0.0

def done(**values):
    print("RESULT " + json.dumps(values, default=str), flush=True)
"""


def run_sdk(plane: ServedPlane, code: str, *, check: bool = True) -> tuple[dict, str]:
    """Run `code` (after PRELUDE) with the SDK pointed at the plane: (what it passed to `done`, stdout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINTRUST_")}
    env.update(BRAINTRUST_APP_URL=plane.url, BRAINTRUST_API_KEY=plane.api_key, BRAINTRUST_DISABLE_ATEXIT_FLUSH="1")
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return (json.loads(lines[-1][7:]) if lines else {}), proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def http(served_plane: ServedPlane):
    with served_plane.client() as client:
        yield client


def _rows(http: httpx.Client, experiment_id: str) -> list[dict]:
    response = http.post("/btql", json={"query": f"SELECT * FROM experiment('{experiment_id}') LIMIT 1000"})
    response.raise_for_status()
    return response.json()["data"]


def _experiment(http: httpx.Client, name: str) -> dict:
    found = http.get("/v1/experiment", params={"experiment_name": name, "project_name": PROJECT}).json()["objects"]
    assert len(found) == 1, found
    return found[0]


def _validate(instance: dict, path: str, method: str = "get") -> None:
    schema = SPEC["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(instance, {"components": SPEC["components"], **schema}, cls=jsonschema.Draft202012Validator)


def test_in_memory_eval_spans_and_summary(served_plane: ServedPlane, http: httpx.Client) -> None:
    result, out = run_sdk(served_plane, """
        r = Eval(PROJECT, data=[{"input": "a", "expected": "A"}, {"input": "b", "expected": "x"}],
                 task=lambda input: input.upper(), scores=[exact], experiment_name="mem")
        s = r.summary
        done(status=s.comparison.status, score=s.scores["exact"].score, id=s.experiment_id, url=s.experiment_url)
    """)
    assert result["status"] == "success" and result["score"] == 0.5
    assert "50.00% 'exact' score" in out and result["url"] in out
    rows = _rows(http, result["id"])
    assert sorted(r["span_attributes"]["type"] for r in rows) == ["eval", "eval", "score", "score", "task", "task"]
    assert all(r["project_id"] == _experiment(http, "mem")["project_id"] for r in rows)
    roots = [r for r in rows if r["is_root"]]
    assert len(roots) == 2 and all("output" in r and "end" in r["metrics"] for r in roots)
    summary = http.get(f"/v1/experiment/{result['id']}/summarize", params={"summarize_scores": "true"}).json()
    assert summary["metrics"]["duration"]["unit"] == "s"
    _validate(summary, "/v1/experiment/{experiment_id}/summarize")
    strict = {"additionalProperties": False}
    for item in summary["scores"].values():
        jsonschema.validate(item, {**SPEC["components"]["schemas"]["ScoreSummary"], **strict})
    for item in summary["metrics"].values():
        jsonschema.validate(item, {**SPEC["components"]["schemas"]["MetricSummary"], **strict})


def test_dataset_eval_origin_base_comparison_and_pinned_version(served_plane: ServedPlane, http: httpx.Client) -> None:
    first, _ = run_sdk(served_plane, """
        ds = init_dataset(PROJECT, "golden")
        for i, (q, a) in enumerate([("a", "A"), ("b", "B"), ("c", "C")]):
            ds.insert(id=f"r{i}", input=q, expected=a)
        ds.flush()
        r = Eval(PROJECT, data=init_dataset(PROJECT, "golden"), task=lambda input: input.upper(), scores=[exact],
                 experiment_name="ds-1")
        done(status=r.summary.comparison.status, id=r.summary.experiment_id, dataset_id=ds.id)
    """)
    assert first["status"] == "success"
    exp = _experiment(http, "ds-1")
    dataset_rows = {r["id"]: r for r in http.post(f"/v1/dataset/{first['dataset_id']}/fetch", json={}).json()["events"]}
    assert exp["dataset_id"] == first["dataset_id"]
    assert exp["dataset_version"] == max(r["_xact_id"] for r in dataset_rows.values())
    roots = [r for r in _rows(http, first["id"]) if r["is_root"]]
    assert len(roots) == 3
    for root in roots:
        row = dataset_rows[root["origin"]["id"]]
        assert root["origin"] == {"object_type": "dataset", "object_id": first["dataset_id"], "id": row["id"],
                                  "_xact_id": row["_xact_id"], "created": row["created"]}
    version = exp["dataset_version"]

    second, out = run_sdk(served_plane, """
        ds = init_dataset(PROJECT, "golden")
        ds.insert(id="late", input="d", expected="D")
        ds.flush()
        r = Eval(PROJECT, data=init_dataset(PROJECT, "golden", version=%r),
                 task=lambda input: "B" if input == "a" else input.upper(), scores=[exact],
                 experiment_name="ds-2", base_experiment_name="ds-1")
        s = r.summary
        done(status=s.comparison.status, id=s.experiment_id, cmp=s.comparison_experiment_name,
             diff=s.scores["exact"].diff, regressions=s.scores["exact"].regressions,
             improvements=s.scores["exact"].improvements)
    """ % version)
    assert second["status"] == "success" and second["cmp"] == "ds-1"
    assert "compared to ds-1" in out
    assert second["diff"] == pytest.approx(-1 / 3) and second["regressions"] == 1 and second["improvements"] == 0
    exp2 = _experiment(http, "ds-2")
    assert exp2["base_exp_id"] == first["id"] and exp2["dataset_version"] == version
    roots = [r for r in _rows(http, second["id"]) if r["is_root"]]
    assert sorted(r["origin"]["id"] for r in roots) == ["r0", "r1", "r2"]  # the later row is left out
    base = http.post("/api/base_experiment/get_id", json={"id": second["id"]}).json()
    assert base == {"base_exp_id": first["id"], "base_exp_name": "ds-1"}


def test_update_rename_failing_task_and_no_send_logs(served_plane: ServedPlane, http: httpx.Client) -> None:
    before = _experiment(http, "mem")
    result, out = run_sdk(served_plane, """
        def task(input):
            if input == "boom":
                raise RuntimeError("task failed")
            return input.upper()
        u = Eval(PROJECT, data=[{"input": "c", "expected": "C"}], task=task, scores=[exact],
                 experiment_name="mem", update=True)
        n = Eval(PROJECT, data=[{"input": "c", "expected": "C"}, {"input": "boom", "expected": "B"}], task=task,
                 scores=[exact], experiment_name="mem")
        done(update_id=u.summary.experiment_id, new_name=n.summary.experiment_name, new_id=n.summary.experiment_id,
             url=n.summary.experiment_url, score=n.summary.scores["exact"].score,
             errors=sum(1 for x in n.results if x.error))
    """, check=False)
    assert result["update_id"] == before["id"]
    assert len([r for r in _rows(http, before["id"]) if r["is_root"]]) == 3  # appended to the 2 cases
    assert result["new_name"].startswith("mem-") and result["new_name"] in result["url"]
    assert result["errors"] == 1 and result["score"] == 1.0  # the failed case has no score
    rows = _rows(http, result["new_id"])
    failed = [r for r in rows if r["is_root"] and r.get("input") == "boom"][0]
    assert "task failed" in failed["error"]
    assert not [r for r in rows if r["root_span_id"] == failed["root_span_id"] and r["span_attributes"]["type"] == "score"]

    counts = http.get("/local/stats").json()["total"]
    local, _ = run_sdk(served_plane, """
        r = Eval(PROJECT, data=[{"input": "a", "expected": "A"}], task=lambda input: input.upper(), scores=[exact],
                 no_send_logs=True)
        done(id=r.summary.experiment_id, score=r.summary.scores["exact"].score)
    """)
    assert local == {"id": None, "score": 1.0}
    assert http.get("/local/stats").json()["total"] == counts


def test_init_experiment_log_fetch_paging_and_spans_source(served_plane: ServedPlane, http: httpx.Client) -> None:
    result, _ = run_sdk(served_plane, """
        e = init_experiment(PROJECT, experiment="manual")
        for i in range(2):
            e.log(input={"i": i}, output=i, scores={"good": i})
        s = e.summarize()
        e.flush()
        o = init_experiment(PROJECT, experiment="manual", open=True)
        rows = list(o.fetch())
        done(status=s.comparison.status, good=s.scores["good"].score, fetched=len(rows), id=o.id,
             keys=sorted(set.intersection(*(set(r) for r in rows))))
    """)
    assert result["status"] == "success" and result["good"] == 0.5 and result["fetched"] == 2
    assert {"id", "_xact_id", "created", "project_id", "experiment_id", "span_id", "root_span_id"} <= set(result["keys"])
    exp_id = result["id"]
    _validate(http.get(f"/v1/experiment/{exp_id}").json(), "/v1/experiment/{experiment_id}")
    _validate(http.get("/v1/experiment", params={"project_name": PROJECT}).json(), "/v1/experiment")
    page = http.post(f"/v1/experiment/{exp_id}/fetch", json={"limit": 1}).json()
    _validate(page, "/v1/experiment/{experiment_id}/fetch", "post")
    second = http.post(f"/v1/experiment/{exp_id}/fetch", json={"limit": 1, "cursor": page["cursor"]}).json()
    last = http.post(f"/v1/experiment/{exp_id}/fetch", json={"limit": 1, "cursor": second["cursor"]}).json()
    assert len(page["events"]) == len(second["events"]) == 1 and last == {"events": []}
    fb = http.post(f"/v1/experiment/{exp_id}/feedback", json={"feedback": [{"id": page["events"][0]["id"], "scores": {"human": 1}}]})
    assert fb.json() == {"status": "success"}
    ins = http.post(f"/v1/experiment/{exp_id}/insert", json={"events": [{"id": "x1", "input": 1, "scores": {"good": 1}}]})
    assert ins.json() == {"row_ids": ["x1"]}
    # the trace fallback of `trace.get_spans()`: the experiment source without scorer spans
    mem = _experiment(http, "mem")
    root = [r for r in _rows(http, mem["id"]) if r["is_root"]][0]
    query = {"from": {"op": "function", "name": {"op": "ident", "name": ["experiment"]}, "args": [{"op": "literal", "value": mem["id"]}]},
             "select": [{"op": "star"}],
             "filter": {"op": "and", "children": [
                 {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]}, "right": {"op": "literal", "value": root["root_span_id"]}},
                 {"op": "or", "children": [
                     {"op": "isnull", "expr": {"op": "ident", "name": ["span_attributes", "purpose"]}},
                     {"op": "ne", "left": {"op": "ident", "name": ["span_attributes", "purpose"]}, "right": {"op": "literal", "value": "scorer"}}]}]}}
    spans = http.post("/btql", json={"query": query}).json()["data"]
    assert sorted(s["span_attributes"]["type"] for s in spans) == ["eval", "task"]
    patched = http.patch(f"/v1/experiment/{exp_id}", json={"description": "d"}).json()
    assert patched["description"] == "d"
    assert http.delete(f"/v1/experiment/{exp_id}").json()["deleted_at"]
    assert http.get(f"/v1/experiment/{exp_id}").status_code == 404


def test_datasets_runs_lists_experiments_by_origin_and_a_rows_scores(served_plane: ServedPlane) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINTRUST_")}
    env.update(BRAINTRUST_APP_URL=served_plane.url, BRAINTRUST_API_KEY=served_plane.api_key)

    def cli(*args: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "pipelines_repo.cli.main", "datasets", "runs", "golden", "-p", PROJECT,
                               "--json", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    runs = cli()["runs"]
    assert [(r["experiment"], r["cases"]) for r in runs] == [("ds-1", 3), ("ds-2", 3)]
    row = cli("--row", "r0")["runs"]
    assert [r["scores"] for r in row] == [[{"exact": 1.0}], [{"exact": 0.0}]]
