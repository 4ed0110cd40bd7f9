"""The compiled Definitions: keys, groups, partitions, policies, externals, broken-file policy.

No data plane needed: loading definitions is offline (asserted by making every HTTP send fail).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import httpx
import pytest

from helpers import write_pipeline
from pipelines_repo.orchestration import (
    BraintrustResource,
    build_definitions,
    sanitize_name,
)
from pipelines_repo.orchestration.compiler import (
    BROKEN_FILES_SENSOR,
    ERRORS_GROUP,
    PipelineDefinitionsError,
    default_pipelines_dir,
)

STAGES = ("pulled_refs", "transformed_rows", "dataset_version")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP request while loading fails the test."""

    def refuse(self, request, *args, **kwargs):
        raise AssertionError(f"network call while loading definitions: {request.method} {request.url}")

    monkeypatch.setattr(httpx.Client, "send", refuse)


def simple_pipeline(name: str, *, project: str = "Proj", dataset: str = "ds", extra: str = "") -> str:
    return f"""
        from pipelines_repo import DatasetPipeline

        def to_row(input, output):
            return {{"input": input, "expected": output}}

        DatasetPipeline(
            name={name!r},
            source={{"project_name": {project!r}, "filter": "metadata.flagged = true", "scope": "span"}},
            transform=to_row,
            target={{"project_name": {project!r}, "dataset_name": {dataset!r}}},
            {extra}
        )
    """


def asset_defs(defs: dg.Definitions) -> dict[dg.AssetKey, dg.AssetsDefinition]:
    return {a.key: a for a in defs.assets if isinstance(a, dg.AssetsDefinition)}


def external_specs(defs: dg.Definitions) -> dict[dg.AssetKey, dg.AssetSpec]:
    return {a.key: a for a in defs.assets if isinstance(a, dg.AssetSpec)}


def test_example_definitions_load_offline_and_validate(isolated_home: Path, offline: None) -> None:
    import importlib

    import definitions

    importlib.reload(definitions)
    defs = definitions.defs
    dg.Definitions.validate_loadable(defs)
    assets = asset_defs(defs)
    for prefix in ("support_cases", "llm_call_traces", "user_feedback_golden", "otel_review_queue"):
        for stage in STAGES:
            key = dg.AssetKey([prefix, stage])
            assert key in assets, key
            asset = assets[key]
            spec = next(iter(asset.specs))
            assert asset.group_names_by_key[key] == prefix
            assert spec.kinds == {"braintrust"}
            assert asset.code_versions_by_key[key] and len(asset.code_versions_by_key[key]) == 12
            assert asset.backfill_policy == dg.BackfillPolicy.single_run()
            assert asset.op.pools == {"braintrust_api"}
            assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
            assert asset.partitions_def.timezone == "UTC"
            assert asset.partitions_def.start.date() == date(2025, 1, 1)
            assert asset.partitions_def.end_offset == 0
            assert asset.descriptions_by_key[key]
            meta = asset.metadata_by_key[key]
            assert {"source_filter", "scope", "target", "braintrust/pipeline_file"} <= set(meta)
        deps = {dep.asset_key for dep in next(iter(assets[dg.AssetKey([prefix, "transformed_rows"])].specs)).deps}
        assert deps == {dg.AssetKey([prefix, "pulled_refs"])}
    pulled = next(iter(assets[dg.AssetKey(["support_cases", "pulled_refs"])].specs))
    assert {d.asset_key for d in pulled.deps} == {dg.AssetKey(["braintrust", "customer_support", "logs"])}
    assert assets[dg.AssetKey(["support_cases", "pulled_refs"])].metadata_by_key[
        dg.AssetKey(["support_cases", "pulled_refs"])
    ]["source_filter"] == "metadata.flagged = true"
    assert assets[dg.AssetKey(["llm_call_traces", "pulled_refs"])].metadata_by_key[
        dg.AssetKey(["llm_call_traces", "pulled_refs"])
    ]["scope"] == "trace"

    externals = external_specs(defs)
    # One shared source for three pipelines; one target per dataset.
    logs = [k for k in externals if k.path[-1] == "logs"]
    assert logs == [dg.AssetKey(["braintrust", "customer_support", "logs"])]
    assert isinstance(externals[logs[0]].partitions_def, dg.DailyPartitionsDefinition)
    target = externals[dg.AssetKey(["braintrust", "customer_support", "datasets", "support_cases"])]
    assert {d.asset_key for d in target.deps} == {dg.AssetKey(["support_cases", "dataset_version"])}
    assert dg.AssetKey(["braintrust", "customer_support", "datasets", "golden_answers"]) in externals

    checks = {(c.asset_key.path[0], c.name) for a in assets.values() for c in a.check_specs}
    pipeline_checks = {"rows_valid", "error_rate_ok", "unique_row_ids", "schema_valid"}
    # The support_faq.py example (a DatasetFile) adds its own schema_valid check.
    assert checks == {(p, name) for p in ("support_cases", "llm_call_traces", "user_feedback_golden", "otel_review_queue") for name in pipeline_checks} | {
        ("support_faq", "schema_valid")
    }
    for check in (c for a in assets.values() for c in a.check_specs):
        assert check.blocking
        # a DatasetFile's check guards its dataset_version; a pipeline's checks guard transformed_rows
        assert check.asset_key.path[-1] == ("dataset_version" if check.asset_key.path[0] == "support_faq" else "transformed_rows")

    schedules = {s.name: defs.get_schedule_def(s.name) for s in defs.schedules}
    sensors = {s.name: s for s in defs.sensors}
    assert set(schedules) == {"support_cases_nightly", "llm_call_traces_nightly", "user_feedback_golden_nightly", "otel_review_queue_nightly",
                              "support_logs_export"}  # the export_support_logs.py example (an ExportAutomation)
    assert set(sensors) == {
        "support_cases_late_data", "llm_call_traces_late_data", "user_feedback_golden_late_data", "otel_review_queue_late_data",
        "support_faq_file_changed",  # the support_faq.py example (a DatasetFile)
    }
    for item in [*schedules.values(), *sensors.values()]:
        assert item.default_status.value == "RUNNING"
    assert schedules["user_feedback_golden_nightly"].cron_schedule == "0 3 * * *"
    assert schedules["support_cases_nightly"].cron_schedule == "0 2 * * *"
    assert sensors["support_cases_late_data"].minimum_interval_seconds == 300
    assert not [k for k in externals if k.path[0] == ERRORS_GROUP]


def test_pipelines_dir_env_and_options(tmp_path: Path, isolated_home: Path, offline: None, monkeypatch) -> None:
    write_pipeline(
        tmp_path,
        "hourly.py",
        simple_pipeline(
            "Hourly One", extra='partitions="hourly", timezone="Europe/Paris", start_date="2025-03-01", schedule_minute=15,'
        ),
    )
    write_pipeline(tmp_path, "weekly.py", simple_pipeline("weekly", extra='partitions="weekly", schedule_hour=5,'))
    monkeypatch.setenv("PIPELINES_DIR", str(tmp_path))
    assert default_pipelines_dir() == tmp_path.resolve()
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assets = asset_defs(defs)
    hourly = assets[dg.AssetKey(["hourly_one", "pulled_refs"])].partitions_def
    assert isinstance(hourly, dg.HourlyPartitionsDefinition)
    assert hourly.timezone == "Europe/Paris"
    assert hourly.get_first_partition_key() == "2025-03-01-00:00+0100"
    weekly = assets[dg.AssetKey(["weekly", "pulled_refs"])].partitions_def
    assert isinstance(weekly, dg.WeeklyPartitionsDefinition)
    assert weekly.get_first_partition_key() == "2025-01-06"  # first Monday
    schedules = {s.name: defs.get_schedule_def(s.name) for s in defs.schedules}
    assert schedules["hourly_one_nightly"].cron_schedule == "15 * * * *"
    assert schedules["weekly_nightly"].cron_schedule == "0 5 * * 1"
    # The shared source is unpartitioned when its readers' partitions differ.
    assert external_specs(defs)[dg.AssetKey(["braintrust", "proj", "logs"])].partitions_def is None


def test_shared_target_lists_every_feeding_pipeline(tmp_path: Path, isolated_home: Path, offline: None) -> None:
    write_pipeline(tmp_path, "a.py", simple_pipeline("first", project="My Project", dataset="Shared DS"))
    write_pipeline(tmp_path, "b.py", simple_pipeline("second", project="My Project", dataset="Shared DS"))
    defs = build_definitions(tmp_path)
    dg.Definitions.validate_loadable(defs)
    externals = external_specs(defs)
    target = externals[dg.AssetKey(["braintrust", "my_project", "datasets", "shared_ds"])]
    assert {d.asset_key for d in target.deps} == {
        dg.AssetKey(["first", "dataset_version"]),
        dg.AssetKey(["second", "dataset_version"]),
    }
    assert [k for k in externals if k.path[-1] == "logs"] == [dg.AssetKey(["braintrust", "my_project", "logs"])]


def test_sanitize_name() -> None:
    assert sanitize_name("Customer Support") == "customer_support"
    assert sanitize_name("support-cases") == "support_cases"
    assert sanitize_name("  a.b/c  d!! ") == "a_b_c_d"
    assert sanitize_name("2024 evals") == "_2024_evals"
    assert sanitize_name("***") == "_"


def test_name_collision_names_both_pipelines(tmp_path: Path, isolated_home: Path, offline: None, caplog) -> None:
    first = write_pipeline(tmp_path, "a_first.py", simple_pipeline("my-ds"))
    second = write_pipeline(tmp_path, "b_second.py", simple_pipeline("my.ds"))
    defs = build_definitions(tmp_path, strict=False)
    dg.Definitions.validate_loadable(defs)
    assert dg.AssetKey(["my_ds", "pulled_refs"]) in asset_defs(defs)
    errors = [s for s in external_specs(defs).values() if s.key.path[0] == ERRORS_GROUP]
    assert len(errors) == 1
    text = errors[0].description or ""
    assert "'my.ds'" in text and "'my-ds'" in text and str(first) in text and str(second) in text
    with pytest.raises(PipelineDefinitionsError, match=r"'my\.ds' and pipeline 'my-ds'"):
        build_definitions(tmp_path, strict=True)


def test_external_key_collision_is_reported(tmp_path: Path, isolated_home: Path, offline: None) -> None:
    write_pipeline(tmp_path, "a.py", simple_pipeline("one", project="Foo Bar"))
    write_pipeline(tmp_path, "b.py", simple_pipeline("two", project="foo-bar"))
    defs = build_definitions(tmp_path, strict=False)
    errors = [s for s in external_specs(defs).values() if s.key.path[0] == ERRORS_GROUP]
    assert len(errors) == 1 and "braintrust/foo_bar/logs" in (errors[0].description or "")
    assert dg.AssetKey(["two", "pulled_refs"]) not in asset_defs(defs)


def test_broken_file_is_reported_and_the_rest_loads(tmp_path: Path, isolated_home: Path, offline: None, caplog, monkeypatch) -> None:
    write_pipeline(tmp_path, "good.py", simple_pipeline("good"))
    bad = write_pipeline(tmp_path, "bad_one.py", "from braintrust import DatasetPipeline\nDatasetPipeline(name='x',\n")
    monkeypatch.delenv("BT_DAGSTER_STRICT", raising=False)
    with caplog.at_level("ERROR", logger="pipelines_repo.orchestration"):
        defs = build_definitions(tmp_path)
    dg.Definitions.validate_loadable(defs)
    assert dg.AssetKey(["good", "dataset_version"]) in asset_defs(defs)
    error_spec = external_specs(defs)[dg.AssetKey([ERRORS_GROUP, "bad_one"])]
    assert error_spec.group_name == ERRORS_GROUP
    assert str(bad) in (error_spec.description or "") and "syntax" in (error_spec.description or "").lower()
    assert any(str(bad) in record.getMessage() for record in caplog.records), "a loud log line names the file"
    sensor = {s.name: s for s in defs.sensors}[BROKEN_FILES_SENSOR]
    assert sensor.default_status.value == "RUNNING"
    with pytest.raises(Exception, match="bad_one.py"):
        sensor(dg.build_sensor_context())
    monkeypatch.setenv("BT_DAGSTER_STRICT", "1")
    with pytest.raises(PipelineDefinitionsError, match="bad_one.py"):
        build_definitions(tmp_path)


def test_missing_pipelines_dir_is_reported(tmp_path: Path, isolated_home: Path, offline: None) -> None:
    defs = build_definitions(tmp_path / "nope", strict=False)
    dg.Definitions.validate_loadable(defs)
    assert any(k.path[0] == ERRORS_GROUP for k in external_specs(defs))


def test_resource_plane_description(isolated_home: Path, monkeypatch, offline: None) -> None:
    local = BraintrustResource()
    assert local.plane == "local"
    assert "local data plane" in local.plane_description()
    assert str(isolated_home / "braintrust-local.db") in local.plane_description()
    assert BraintrustResource(local_db=str(isolated_home / "x.db")).local_db_path() == isolated_home / "x.db"
    real = BraintrustResource(api_key="sk-test", api_url="https://api.example.test", org_name="acme")
    assert real.plane == "braintrust"
    text = real.plane_description()
    assert "https://api.example.test" in text and "acme" in text and "sk-test" not in text
    monkeypatch.setenv("BRAINTRUST_API_KEY", "sk-env")
    assert BraintrustResource().plane == "braintrust"
    from pipelines_repo.orchestration.resource import resource_from_env

    bound = resource_from_env()
    assert bound.plane == "braintrust" and "sk-env" not in bound.plane_description()

