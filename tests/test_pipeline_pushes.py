"""Change-aware pipeline pushes, keep_curated and schema quarantine, on a served plane with the SDK.

The CLI reaches the served plane as it would reach Braintrust; dataset rows are edited and deleted
with the official SDK, as someone curating the dataset would.
"""

from __future__ import annotations

import json
from pathlib import Path

import braintrust
import pytest

from conftest import ServedPlane
from helpers import write_pipeline
from pipelines_repo.cli.main import main as cli

SOURCE = "pp-src"
TARGET = "pp-dst"

PIPELINE = """
    import os
    from pipelines_repo import DatasetPipeline

    def transform(input, output, id):
        suffix = os.environ.get("PP_SUFFIX", "")
        bad = os.environ.get("PP_BAD") and input["n"] % 3 == 0
        return {{"id": id, "input": input, "expected": input["n"] if bad else output + suffix}}

    DatasetPipeline(
        name="pp-{dataset}",
        source={{"project_name": "{source}", "scope": "span"}},
        transform=transform,
        target={{"project_name": "{target}", "dataset_name": "{dataset}"}},
        {options}
    )
"""


@pytest.fixture(scope="module")
def logged(served_plane: ServedPlane) -> list[str]:
    braintrust.login(app_url=served_plane.url, api_key=served_plane.api_key, force_login=True)
    logger = braintrust.init_logger(project=SOURCE, app_url=served_plane.url, api_key=served_plane.api_key)
    ids = []
    for n in range(6):
        with logger.start_span(name="req", input={"n": n}) as span:
            span.log(output=f"answer {n}")
            ids.append(span.id)
    logger.flush()
    return ids


@pytest.fixture
def env(served_plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BRAINTRUST_API_KEY", served_plane.api_key)
    monkeypatch.setenv("BRAINTRUST_APP_URL", served_plane.url)
    monkeypatch.delenv("BRAINTRUST_API_URL", raising=False)
    monkeypatch.delenv("BRAINTRUST_ORG_NAME", raising=False)
    monkeypatch.delenv("PP_SUFFIX", raising=False)
    monkeypatch.delenv("PP_BAD", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pipeline(directory: Path, dataset: str, **options: object) -> Path:
    opts = "".join(f"{k}={v!r}, " for k, v in options.items())
    return write_pipeline(directory, f"{dataset}.py", PIPELINE.format(dataset=dataset, source=SOURCE, target=TARGET, options=opts))


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, dict | None, str]:
    capsys.readouterr()
    code = cli(["datasets", "pipeline", *args, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out.strip().splitlines()[-1]) if out.strip() else None), err


def ok(capsys: pytest.CaptureFixture, *args: str) -> dict:
    code, summary, err = run(capsys, *args)
    assert code == 0, err
    assert summary is not None
    return summary


def sdk_dataset(plane: ServedPlane, name: str):
    return braintrust.init_dataset(project=TARGET, name=name, app_url=plane.url, api_key=plane.api_key)


def rows_of(plane: ServedPlane, name: str) -> dict[str, dict]:
    return {row["id"]: row for row in sdk_dataset(plane, name)}


def run_args(path: Path) -> list[str]:
    return ["run", str(path), "--window", "1d", "--no-limit"]


def test_rerun_that_changed_nothing_creates_no_version(served_plane, logged, env, capsys, monkeypatch) -> None:
    path = pipeline(env, "unchanged")
    first = ok(capsys, *run_args(path))
    assert (first["added"], first["updated"], first["rows"]) == (6, 0, 6)
    again = ok(capsys, *run_args(path))
    assert again["dataset_version"] == first["dataset_version"]
    assert (again["added"], again["updated"], again["unchanged"], again["rows"]) == (0, 0, 6, 0)

    # a changed transform output updates exactly the changed rows
    monkeypatch.setenv("PP_SUFFIX", "!")
    changed = ok(capsys, *run_args(path))
    assert (changed["added"], changed["updated"], changed["unchanged"]) == (0, 6, 0)
    assert int(changed["dataset_version"]) > int(first["dataset_version"])
    assert {r["expected"] for r in rows_of(served_plane, "unchanged").values()} == {f"answer {n}!" for n in range(6)}


def test_staged_push_is_change_aware(served_plane, logged, env, capsys) -> None:
    path = pipeline(env, "staged")
    ok(capsys, "pull", str(path), "--window", "1d", "--no-limit")
    ok(capsys, "transform", str(path))
    first = ok(capsys, "push", str(path))
    assert first["added"] == 6
    forced = ok(capsys, "push", str(path), "--force")
    assert (forced["unchanged"], forced["rows_uploaded"]) == (6, 0)
    assert forced["dataset_version"] == first["dataset_version"]


def _edit_one(plane: ServedPlane, name: str, row_id: str) -> None:
    dataset = sdk_dataset(plane, name)
    dataset.update(id=row_id, expected="curated by a human")
    dataset.flush()


def test_keep_curated_keeps_edits_and_deletes(served_plane, logged, env, capsys) -> None:
    path = pipeline(env, "curated", on_conflict="keep_curated")
    ok(capsys, *run_args(path))
    edited, deleted = logged[1], logged[2]
    _edit_one(served_plane, "curated", edited)
    again = ok(capsys, *run_args(path))
    assert again["kept_curated"] == 1 and again["rows"] == 0
    assert rows_of(served_plane, "curated")[edited]["expected"] == "curated by a human"

    dataset = sdk_dataset(served_plane, "curated")
    dataset.delete(deleted)
    dataset.flush()
    for _ in range(2):  # stays curated across later pushes too
        third = ok(capsys, *run_args(path))
        rows = rows_of(served_plane, "curated")
        assert deleted not in rows and rows[edited]["expected"] == "curated by a human"
        assert third["kept_curated"] == 2 and len(rows) == 5


def test_overwrite_replaces_edits(served_plane, logged, env, capsys) -> None:
    path = pipeline(env, "overwritten")
    ok(capsys, *run_args(path))
    _edit_one(served_plane, "overwritten", logged[1])
    again = ok(capsys, *run_args(path))
    assert (again["updated"], again["kept_curated"]) == (1, 0)
    assert rows_of(served_plane, "overwritten")[logged[1]]["expected"] == "answer 1"


def _enforce_string_expected(plane: ServedPlane, name: str) -> None:
    from pipelines_repo.backend import open_client
    from pipelines_repo.datasets.catalog import set_schema
    from pipelines_repo.engine.spec import TargetSpec

    with open_client() as client:
        set_schema(client, TargetSpec(project_name=TARGET, dataset_name=name), "expected", {"type": "string"}, enforce=True)


def _quarantine_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("max_invalid", [0, 2])
def test_schema_quarantine_on_staged_push(served_plane, logged, env, capsys, monkeypatch, max_invalid) -> None:
    name = f"schema{max_invalid}"
    path = pipeline(env, name, max_invalid_rows=max_invalid)
    ok(capsys, *run_args(path))  # creates the dataset (all rows valid)
    _enforce_string_expected(served_plane, name)
    monkeypatch.setenv("PP_BAD", "1")
    monkeypatch.setenv("PP_SUFFIX", "?")
    ok(capsys, "pull", str(path), "--window", "1d", "--no-limit")
    transformed = Path(ok(capsys, "transform", str(path))["out"]).resolve()
    code, summary, err = run(capsys, "push", str(path))
    quarantine = transformed.with_name("quarantine.jsonl")
    entries = _quarantine_lines(quarantine)
    assert sorted(e["row"]["input"]["n"] for e in entries) == [0, 3]  # exactly the non-conforming rows
    assert all(e["errors"] == [{"field": "expected", "path": "$", "keyword": "type",
                                "message": f"{e['row']['input']['n']} is not of type 'string'"}] for e in entries)
    rows = rows_of(served_plane, name)
    if max_invalid == 0:
        assert code == 1 and "2 row(s) do not conform" in err and "max_invalid_rows" in err
        assert f"{quarantine.parent.name}/quarantine.jsonl" in err
        assert all(not r["expected"].endswith("?") for r in rows.values())  # nothing pushed
    else:
        assert code == 0, err
        assert (summary["quarantined"], summary["updated"]) == (2, 4)
        assert sorted(r["input"]["n"] for r in rows.values() if r["expected"].endswith("?")) == [1, 2, 4, 5]


def test_schema_quarantine_on_run(served_plane, logged, env, capsys, monkeypatch) -> None:
    path = pipeline(env, "schemarun")
    ok(capsys, *run_args(path))
    _enforce_string_expected(served_plane, "schemarun")
    monkeypatch.setenv("PP_BAD", "1")
    before = rows_of(served_plane, "schemarun")
    code, _, err = run(capsys, *run_args(path))
    assert code == 1 and "quarantine.jsonl" in err
    assert rows_of(served_plane, "schemarun") == before
    quarantine = env / "bt-sync" / "dataset_pipeline_schemarun" / "quarantine.jsonl"
    entries = _quarantine_lines(quarantine)
    assert len(entries) == 2
    # the rows are placed in the stream, not in a scratch file that no longer exists
    assert all(e.get("where", "").startswith("row ") for e in entries), entries


# -- Dagster: the schema_valid check blocks the push ------------------------------------------------

SCHEMA_CHECKED = '''
from pipelines_repo import DatasetPipeline

def numbers(input, output):
    return {"input": input, "expected": 1}   # the target enforces a string expected

DatasetPipeline(
    name="numbers",
    source={"project_name": "Customer Support", "filter": "metadata.flagged = true", "scope": "span"},
    transform=numbers,
    target={"project_name": "Customer Support", "dataset_name": "Strings"},
)
'''


def test_dagster_schema_valid_check_blocks_the_push(isolated_home: Path, instance, tmp_path: Path) -> None:
    import dagster as dg

    from pipelines_repo.datasets.catalog import set_schema
    from pipelines_repo.engine.push import resolve_target
    from pipelines_repo.engine.spec import TargetSpec
    from pipelines_repo.orchestration import build_definitions
    from test_dagster_materialize import Plane, materialize

    plane = Plane(isolated_home)
    target = TargetSpec(project_name="Customer Support", dataset_name="Strings")
    with plane.client() as client:
        resolve_target(client, target)
        set_schema(client, target, "expected", {"type": "string"}, enforce=True)
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "numbers.py", SCHEMA_CHECKED)
    result = materialize(build_definitions(folder, strict=True), "numbers", instance, first=plane.day(6), last=plane.day(1))
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    failed = checks["schema_valid"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    quarantined = failed.metadata["quarantined"].value
    assert quarantined > 0 and failed.metadata["max_invalid_rows"].value == 0
    assert [name for name, c in checks.items() if not c.passed] == ["schema_valid"]
    assert not instance.get_materialized_partitions(dg.AssetKey(["numbers", "dataset_version"]))
    assert plane.dataset("Strings") == ({}, None)  # nothing pushed
    lines = _quarantine_lines(Path(failed.metadata["quarantine_path"].value))
    assert lines and all(e["errors"][0]["keyword"] == "type" for e in lines)
