"""DatasetFile declarations compiled to Dagster: definitions, upload runs, the file sensor, errors.

Runs against the embedded local plane in an isolated $DAGSTER_HOME (no API key). Expected rows are
computed from the CSV with the csv module and the declared mapping, not through the upload code.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from helpers import EXAMPLES, write_pipeline
from pipelines_repo.backend import open_client
from pipelines_repo.engine.jsonl import sha256_file
from pipelines_repo.engine.push import latest_dataset_version
from pipelines_repo.orchestration import build_definitions
from pipelines_repo.orchestration.compiler import ERRORS_GROUP
from pipelines_repo.settings import ApiSettings

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PROJECT = "Customer Support"
DATASET = "FAQ golden"
KEY = dg.AssetKey(["faq", "dataset_version"])
FILE_KEY = dg.AssetKey(["files", "faq"])
SENSOR = "faq_file_changed"
CSV_TEXT = EXAMPLES / "data" / "support_faq.csv"

DECLARATION = f"""
    from pipelines_repo import DatasetFile

    DatasetFile(
        name="faq",
        path="data/faq.csv",
        target={{"project_name": {PROJECT!r}, "dataset_name": {DATASET!r}}},
        mapping={{
            "columns": {{"question": "input.question", "answer": "expected", "topic": "metadata",
                         "difficulty": "metadata", "labels": "tags"}},
            "id_field": "case_id",
            "metadata": {{"source": "faq.csv"}},
        }},
        schema={{
            "input": {{"type": "object", "properties": {{"question": {{"type": "string", "minLength": 5}}}},
                       "required": ["question"], "enforce": True}},
            "expected": {{"type": "string", "minLength": 1, "enforce": True}},
        }},
    )
"""


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, request, *args, **kwargs):
        raise AssertionError(f"network call while loading definitions: {request.method} {request.url}")

    monkeypatch.setattr(httpx.Client, "send", refuse)


@pytest.fixture
def pipelines(tmp_path: Path) -> Path:
    """A pipelines folder holding the declaration and a copy of the example CSV."""
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "faq.py", DECLARATION)
    (folder / "data").mkdir()
    shutil.copy(CSV_TEXT, folder / "data" / "faq.csv")
    return folder


def expected_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The CSV as the declared mapping makes it: id from case_id, question under input, ..."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            rec["case_id"]: {
                "input": {"question": rec["question"]},
                "expected": rec["answer"],
                "metadata": {"source": "faq.csv", "topic": rec["topic"], "difficulty": rec["difficulty"]},
                "tags": [t.strip() for t in rec["labels"].split(",")],
            }
            for rec in csv.DictReader(handle)
        }


def stored(home: Path) -> tuple[dict[str, dict[str, Any]], str | None, dict[str, Any] | None]:
    """(rows by id, dataset version, dataset object) read back from the local plane."""
    with open_client(ApiSettings(), local_db=home / "braintrust-local.db") as client:
        project = client.get_project(name=PROJECT)
        dataset = client.find_dataset(project["id"], DATASET) if project else None
        if dataset is None:
            return {}, None, None
        rows = {
            row["id"]: {k: row.get(k) for k in ("input", "expected", "metadata", "tags")}
            for row in client.fetch_dataset(dataset["id"])
        }
        return rows, latest_dataset_version(client, dataset["id"]), client.get_dataset(dataset["id"])


def run(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        defs.assets, selection=dg.AssetSelection.assets(KEY), instance=instance,
        resources={"braintrust": defs.resources["braintrust"]}, raise_on_error=False,
    )


def value(materialization: dg.AssetMaterialization, key: str) -> Any:
    item = materialization.metadata[key]
    return getattr(item, "value", item)


def only_materialization(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    (event,) = [e for e in result.get_asset_materialization_events() if e.materialization.asset_key == KEY]
    return event.materialization


def schema_check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "schema_valid"]
    return evaluation


def sensor_of(defs: dg.Definitions) -> dg.SensorDefinition:
    return {s.name: s for s in defs.sensors}[SENSOR]


# -- definitions ------------------------------------------------------------------------------------


def test_example_dataset_file_loads_offline(isolated_home: Path, offline: None) -> None:
    from pipelines_repo import DatasetFile  # the public import the example uses

    assert callable(DatasetFile)
    defs = build_definitions(EXAMPLES)
    dg.Definitions.validate_loadable(defs)
    key = dg.AssetKey(["support_faq", "dataset_version"])
    asset = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and key in a.keys)
    assert asset.partitions_def is None and asset.op.pools == {"braintrust_api"}
    spec = next(iter(asset.specs))
    assert {d.asset_key for d in spec.deps} == {dg.AssetKey(["files", "support_faq"])}
    assert len(spec.code_version or "") == 12
    assert {"data_file", "target", "braintrust/pipeline_file"} <= set(spec.metadata)
    (check,) = asset.check_specs
    assert check.name == "schema_valid" and check.blocking
    externals = {a.key: a for a in defs.assets if isinstance(a, dg.AssetSpec)}
    assert dg.AssetKey(["files", "support_faq"]) in externals
    target = externals[dg.AssetKey(["braintrust", "customer_support", "datasets", "support_faq"])]
    assert {d.asset_key for d in target.deps} == {key}
    sensor = {s.name: s for s in defs.sensors}["support_faq_file_changed"]
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 300
    assert not [k for k in externals if k.path[0] == ERRORS_GROUP]


def test_code_version_follows_the_file_content(pipelines: Path, isolated_home: Path) -> None:
    def version() -> str:
        defs = build_definitions(pipelines)
        asset = next(a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and KEY in a.keys)
        return asset.code_versions_by_key[KEY]

    before = version()
    assert version() == before
    with (pipelines / "data" / "faq.csv").open("a", encoding="utf-8") as handle:
        handle.write("faq-011,Where is my order history?,Orders > History.,billing,easy,billing\n")
    assert version() != before


# -- runs -------------------------------------------------------------------------------------------


def test_materialize_uploads_the_mapped_rows_once(pipelines: Path, isolated_home: Path, instance) -> None:
    defs = build_definitions(pipelines)
    result = run(defs, instance)
    assert result.success
    rows, version, dataset = stored(isolated_home)
    expected = expected_rows(pipelines / "data" / "faq.csv")
    assert rows == expected
    assert dataset["metadata"]["__schemas"]["expected"]["enforce"] is True
    first = only_materialization(result)
    assert value(first, "added") == len(expected) and value(first, "unchanged") == 0
    assert value(first, "dataset_version") == version and value(first, "dataset_id") == dataset["id"]
    assert value(first, "file_sha256") == sha256_file(pipelines / "data" / "faq.csv")
    assert "dataset_url" in first.metadata
    assert schema_check(result).passed

    again = run(defs, instance)
    assert again.success
    second = only_materialization(again)
    assert value(second, "added") == 0 and value(second, "updated") == 0
    assert value(second, "unchanged") == len(expected)
    rows_after, version_after, _ = stored(isolated_home)
    assert version_after == version and rows_after == expected


def test_non_conforming_row_fails_and_writes_nothing(pipelines: Path, isolated_home: Path, instance) -> None:
    data = pipelines / "data" / "faq.csv"
    with data.open("a", encoding="utf-8") as handle:
        handle.write("faq-011,Hi?,Hello.,account,easy,account\n")  # question shorter than minLength 5
    result = run(build_definitions(pipelines), instance)
    assert not result.success
    assert not schema_check(result).passed
    assert not [e for e in result.get_asset_materialization_events() if e.materialization.asset_key == KEY]
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "do not conform" in str(failure.event_specific_data.error)
    rows, version, dataset = stored(isolated_home)
    assert rows == {} and version is None
    assert dataset is None, "a bad first upload creates no (empty) dataset"
    quarantine = isolated_home / "bt-sync" / "dataset_file_faq" / "quarantine.jsonl"
    assert "faq-011" in quarantine.read_text(encoding="utf-8")
    assert not list(data.parent.glob("*.quarantine.jsonl")), "nothing is written beside the user's file"


# -- the sensor -------------------------------------------------------------------------------------


def test_sensor_requests_a_run_when_the_content_changes(pipelines: Path, isolated_home: Path, instance) -> None:
    defs = build_definitions(pipelines)
    sensor = sensor_of(defs)
    data = pipelines / "data" / "faq.csv"

    never = sensor(dg.build_sensor_context(instance=instance))
    assert [r.asset_selection for r in never.run_requests] == [[KEY]], "never materialized: upload it"

    assert run(defs, instance).success
    first = sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(first, dg.SensorResult) and not first.run_requests
    assert first.cursor == sha256_file(data), "materialized from this content: only the cursor is set"
    same = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(same, dg.SkipReason)

    with data.open("a", encoding="utf-8") as handle:
        handle.write("faq-011,Where is my order history?,Orders > History.,billing,easy,billing\n")
    changed = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert [r.asset_selection for r in changed.run_requests] == [[KEY]]
    assert changed.cursor == sha256_file(data) != first.cursor
    assert [e.asset_key for e in changed.asset_events] == [FILE_KEY]
    assert isinstance(sensor(dg.build_sensor_context(instance=instance, cursor=changed.cursor)), dg.SkipReason)


# -- broken declarations ----------------------------------------------------------------------------


def test_bad_declarations_land_in_errors_and_the_rest_loads(pipelines: Path, isolated_home: Path, offline: None) -> None:
    missing = write_pipeline(pipelines, "missing_file.py", DECLARATION.replace('"faq"', '"other"').replace("data/faq.csv", "data/nope.csv"))
    bad_map = write_pipeline(
        pipelines, "bad_mapping.py",
        DECLARATION.replace('"faq"', '"third"').replace('"answer": "expected"', '"answer": "expectd"'),
    )
    defs = build_definitions(pipelines, strict=False)
    dg.Definitions.validate_loadable(defs)
    assert any(isinstance(a, dg.AssetsDefinition) and KEY in a.keys for a in defs.assets)
    errors = {a.key.path[1]: a for a in defs.assets if isinstance(a, dg.AssetSpec) and a.key.path[0] == ERRORS_GROUP}
    assert set(errors) == {"missing_file", "bad_mapping"}
    text = errors["missing_file"].description or ""
    assert str(missing) in text and "nope.csv" in text and "not found" in text and "line" in text
    text = errors["bad_mapping"].description or ""
    assert str(bad_map) in text and "expectd" in text and "Fix" in text
    assert {s.name for s in defs.sensors} >= {SENSOR, "broken_pipeline_files"}
