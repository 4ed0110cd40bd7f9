"""Experiments in the data-management features, against a served local plane: `export experiment`
(jsonl and parquet, a local folder and SeaweedFS) and `RetentionPolicy(object_type="experiment")`.

Experiments are created through the plane's routes (`POST /v1/experiment`) with rows written
through `/logs3`, which is what the SDK sends (faster than Eval() in subprocesses). The create
route does not accept `created`, so the tests make experiments old by writing `objects.created`
in the SQLite file directly; ground truth after a retention run is read from that file too.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from conftest import ServedPlane
from helpers import cli_json, write_pipeline
from pipelines_repo.backend import open_client
from pipelines_repo.cli.main import main as cli
from pipelines_repo.export.sources import EXPERIMENT_COLUMNS
from pipelines_repo.retention.apply import apply_policy, preview
from pipelines_repo.retention.spec import build_policy
from s3_server import S3Server, export_env, s3_server  # noqa: F401 - the session fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PROJECT, OTHER = "Experiment Data", "Experiment Data Other"
KEEP = ("input", "output", "expected", "scores", "metadata", "tags", "span_parents", "is_root")
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def case_rows(experiment_id: str, n: int, tag: str) -> list[dict]:
    """Per case: a root span (task, scores) and a scorer child span."""
    rows = []
    for i in range(n):
        root = f"{tag}-root-{i}"
        rows.append({"id": root, "experiment_id": experiment_id, "span_id": root, "root_span_id": root,
                     "input": {"q": f"question {i}"}, "output": f"answer {i}", "expected": f"answer {i}",
                     "scores": {"exact": 1.0 if i % 2 == 0 else 0.0}, "metadata": {"case": i, "tag": tag}, "tags": [tag]})
        rows.append({"id": f"{tag}-score-{i}", "experiment_id": experiment_id, "span_id": f"{tag}-score-{i}",
                     "root_span_id": root, "span_parents": [root], "input": {"output": f"answer {i}"},
                     "output": {"score": 1.0}, "metadata": {"scorer": "exact"}})
    return rows


def make_experiment(http: httpx.Client, project_id: str, name: str, n: int) -> tuple[str, list[dict]]:
    response = http.post("/v1/experiment", json={"project_id": project_id, "name": name, "ensure_new": True})
    response.raise_for_status()
    exp_id = response.json()["id"]
    rows = case_rows(exp_id, n, name)
    http.post("/logs3", json={"rows": rows, "api_version": 2}).raise_for_status()
    return exp_id, rows


def set_created(db: Path, experiment_id: str, when: datetime) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE objects SET created=? WHERE id=?", (when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), experiment_id))


def state(db: Path, experiment_id: str) -> tuple[str | None, int]:
    """(deleted_at, stored row versions) of an experiment, from the file."""
    with sqlite3.connect(db) as conn:
        pk, deleted_at = conn.execute("SELECT pk, deleted_at FROM objects WHERE id=?", (experiment_id,)).fetchone()
        (versions,) = conn.execute("SELECT count(*) FROM rows WHERE obj=?", (pk,)).fetchone()
    return deleted_at, versions


@pytest.fixture(scope="module")
def seeded(served_plane: ServedPlane) -> dict:
    with served_plane.client() as http:
        pid = http.post("/v1/project", json={"name": PROJECT}).json()["id"]
        other = http.post("/v1/project", json={"name": OTHER}).json()["id"]
        exported, rows = make_experiment(http, pid, "baseline", 6)
        exps = {name: make_experiment(http, pid, name, 3)[0] for name in ("old-40d", "old-31d", "fresh-29d", "fresh-now")}
        exps["other-old"] = make_experiment(http, other, "other-old", 2)[0]
    for name, days in (("old-40d", 40), ("old-31d", 31), ("fresh-29d", 29), ("other-old", 45)):
        set_created(served_plane.db, exps[name], TODAY - timedelta(days=days) + timedelta(hours=3))
    return {"project_id": pid, "baseline": exported, "rows": rows, "exps": exps}


@pytest.fixture
def env(served_plane: ServedPlane, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: F811
    return export_env(served_plane, s3_server, monkeypatch, tmp_path)


def run(capsys, *args: str) -> dict:
    return cli_json(capsys, *args)


def expected(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: {"input": r.get("input"), "output": r.get("output"), "expected": r.get("expected"),
                      "scores": r.get("scores"), "metadata": r.get("metadata"), "tags": r.get("tags"),
                      "span_parents": r.get("span_parents"), "is_root": not r.get("span_parents")} for r in rows}


def decoded(row: dict) -> dict:
    """A Parquet row back to values: JSON-text columns decoded (tags and is_root are typed)."""
    out = {}
    for key in KEEP:
        value = row.get(key)
        out[key] = json.loads(value) if isinstance(value, str) and key not in ("tags", "is_root") else value
    return out


# -- export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["local", "s3"])
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_experiment_round_trip(seeded, env, s3_server, capsys, fmt, where):  # noqa: F811
    out = f"s3://{s3_server.make_bucket()}/exp/" if where == "s3" else str(env / "out")
    if where == "local":
        Path(out).mkdir()
    result = run(capsys, "export", "experiment", "--project", PROJECT, "--experiment", "baseline", "--format", fmt, "--out", out)
    assert result["rows"] == len(seeded["rows"]) == 12 and result["files"] == 1
    (path,) = result["paths"]
    assert path.endswith(f"experiment.{fmt}")
    local = env / f"got.{fmt}"
    if where == "s3":
        import obstore

        bucket, _, key = path.removeprefix("s3://").partition("/")
        local.write_bytes(bytes(obstore.get(s3_server.store(bucket), key).bytes()))
    else:
        local = Path(path)
    if fmt == "jsonl":
        got = [json.loads(line) for line in local.read_text().splitlines()]
        by_id = {r["id"]: {k: r.get(k) for k in KEEP} for r in got}
    else:
        assert pq.read_schema(local).names == [*EXPERIMENT_COLUMNS, "_extra"]
        got = pq.read_table(local).to_pylist()
        by_id = {r["id"]: decoded(r) for r in got}
    assert all(r["experiment_id"] == seeded["baseline"] and r["project_id"] == seeded["project_id"] for r in got)
    assert by_id == expected(seeded["rows"])


def test_export_experiment_filter_and_missing_name(seeded, env, capsys):
    result = run(capsys, "export", "experiment", "--project", PROJECT, "--experiment", "baseline",
                 "--filter", "is_root = true", "--out", str(env / "roots.jsonl"))
    assert result["rows"] == 6
    capsys.readouterr()
    assert cli(["export", "experiment", "--project", PROJECT, "--experiment", "nope", "--out", str(env / "x.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "experiment 'nope' in project 'Experiment Data': does not exist" in err and "Fix:" in err and "'baseline'" in err


# -- retention ------------------------------------------------------------------------------------


def test_experiment_policy_is_accepted():
    policy = build_policy("exp-30d", project=PROJECT, object_type="experiment", retention_days=30)
    assert policy.object_type == "experiment"
    assert policy.braintrust_config() == {"event_type": "retention", "object_type": "experiment", "retention_days": 30}


def test_retention_deletes_whole_experiments_created_before_the_cutoff(seeded, env, served_plane, capsys, monkeypatch):
    exps, db = seeded["exps"], served_plane.db
    folder = env / "pipelines"
    write_pipeline(folder, "retention.py", f"""
        from pipelines_repo import RetentionPolicy

        RetentionPolicy(name="exp-30d", project={PROJECT!r}, object_type="experiment", retention_days=30)
    """)
    monkeypatch.setenv("PIPELINES_DIR", str(folder))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # the guard does not apply: no --force needed

    shown = run(capsys, "retention", "preview", "exp-30d")
    assert [t["object_id"] for t in shown["targets"]] == [exps["old-40d"], exps["old-31d"]]  # oldest first
    assert [t["days"][0]["rows"] for t in shown["targets"]] == [6, 6]
    assert all(t["object_type"] == "experiment" and t["days"][0]["held_back"] == [] for t in shown["targets"])
    capsys.readouterr()
    assert cli(["retention", "preview", "exp-30d"]) == 0
    text = capsys.readouterr().out
    assert f"{PROJECT} / old-40d" in text and "delete the experiment" in text and "fresh" not in text

    report = run(capsys, "retention", "apply", "exp-30d")
    assert report["deleted"] == 12
    assert [e["id"] for e in report["deleted_experiments"]] == [exps["old-40d"], exps["old-31d"]]
    assert all(t["purge"]["rows_purged"] == 6 for t in report["targets"])
    for name in ("old-40d", "old-31d"):
        deleted_at, versions = state(db, exps[name])
        assert deleted_at is not None and versions == 0  # gone whole: registry marked, rows purged
    for name in ("fresh-29d", "fresh-now", "other-old"):
        assert state(db, exps[name]) == (None, 6 if name != "other-old" else 4)
    assert state(db, seeded["baseline"]) == (None, 12)
    with served_plane.client() as http:
        listed = {e["name"] for e in http.get("/v1/experiment", params={"project_id": seeded["project_id"]}).json()["objects"]}
        assert listed == {"baseline", "fresh-29d", "fresh-now"}
        assert http.post("/local/experiment/" + exps["fresh-now"] + "/purge", json={}).status_code == 400  # live: refused

    with open_client() as client:  # a second run converges: nothing left to delete
        policy = build_policy("exp-30d", project=PROJECT, object_type="experiment", retention_days=30)
        assert preview(client, policy) == []
        assert apply_policy(client, policy).deleted == 0
