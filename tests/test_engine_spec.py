"""Pipeline specs, the pipeline-file loader, and pull windows/filters (docs/BT_COMPAT.md §2, §3, §6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from braintrust import dataset_pipeline as sdk

from helpers import write_pipeline
from pipelines_repo.engine.loader import PipelineLoadError, discover_pipelines, load_pipeline_file, select_pipeline
from pipelines_repo.engine.spec import (
    DEFAULT_START_DATE,
    PipelineOptions,
    PipelineOptionsError,
    SourceSpec,
    TargetSpec,
    parse_options,
)
from pipelines_repo.engine.window import (
    TimeWindow,
    WindowIndex,
    absolute_discovery_filter,
    discovery_filter,
    format_timestamp,
    parse_timestamp,
    parse_window,
)

BASIC = """
from braintrust import DatasetPipeline

def transform(input, output, metadata):
    return {"input": input, "expected": output}

DatasetPipeline(
    name=__NAME__,
    source={"project_name": "app", "filter": "metadata.topic = 'x'"},
    transform=transform,
    target={"project_name": "app", "dataset_name": "Golden"},
)
"""


def basic(name):
    return BASIC.replace("__NAME__", repr(name))


# -- spec models -------------------------------------------------------------------------------


def test_target_dataset_name_is_stripped_and_required():
    assert TargetSpec(dataset_name="  Ground Truth  ").dataset_name == "Ground Truth"
    with pytest.raises(ValueError, match="target.dataset_name"):
        TargetSpec(dataset_name="   ")


def test_source_defaults_and_camel_case():
    source = SourceSpec(project_name=" app ", filter="  ")
    assert source.scope == "span"
    assert source.filter is None
    assert source.to_bt() == {"projectName": "app", "scope": "span"}
    overridden = SourceSpec(project_id="p1", project_name="a").with_overrides(project_name="b")
    assert overridden.project_id is None and overridden.project_name == "b"


def test_target_inherits_source_org_only_without_one():
    assert TargetSpec(dataset_name="d").with_default_org("acme").org_name == "acme"
    assert TargetSpec(dataset_name="d", org_name="mine").with_default_org("acme").org_name == "mine"


def test_options_defaults_are_fixed():
    options = PipelineOptions()
    assert options.partitions == "daily"
    assert options.start_date == DEFAULT_START_DATE == date(2025, 1, 1)
    assert (options.schedule_hour, options.schedule_minute, options.lookback_days) == (2, 0, 3)
    assert options.on_error == "fail" and options.max_error_rate == 0.05
    assert (options.page_size, options.push_batch_rows, options.push_batch_bytes) == (1000, 1000, 3 * 1024 * 1024)


def test_unknown_option_names_it_and_lists_valid_ones():
    with pytest.raises(PipelineOptionsError) as info:
        parse_options({"schedule_hours": 3})
    message = str(info.value)
    assert "'schedule_hours'" in message and "did you mean 'schedule_hour'" in message
    assert "Valid options: partitions, start_date" in message
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    with pytest.raises(PipelineOptionsError, match="schedule_hour"):
        parse_options({"schedule_hour": 24})
    with pytest.raises(PipelineOptionsError, match="timezone"):
        parse_options({"timezone": "Mars/Olympus"})


# -- our DatasetPipeline -------------------------------------------------------------------------


def test_own_dataset_pipeline_registers_in_sdk_and_keeps_options(tmp_path):
    path = write_pipeline(
        tmp_path,
        "nightly.py",
        """
        from pipelines_repo import DatasetPipeline

        DatasetPipeline(
            "nightly",
            source={"project_name": "app", "scope": "trace"},
            transform=lambda trace: {"input": 1},
            target={"dataset_name": "D"},
            partitions="hourly",
            start_date="2025-06-01",
            on_error="skip",
            max_concurrency=3,
        )
        """,
    )
    before = list(sdk._DATASET_PIPELINES)
    (spec,) = load_pipeline_file(path)
    assert sdk._DATASET_PIPELINES == before  # the load did not leak into the SDK registry
    assert spec.name == "nightly" and spec.scope == "trace"
    assert spec.options.partitions == "hourly"
    assert spec.options.start_date == date(2025, 6, 1)
    assert spec.options.on_error == "skip" and spec.options.max_concurrency == 3


def test_own_dataset_pipeline_appends_to_sdk_registry():
    from pipelines_repo import DatasetPipeline

    saved = list(sdk._DATASET_PIPELINES)
    try:
        definition = DatasetPipeline(source={}, transform=lambda: None, target={"dataset_name": "d"}, lookback_days=7)
        assert sdk._DATASET_PIPELINES[-1] is definition
        assert definition.source == {"scope": "span"}  # the SDK's own defaulting
    finally:
        sdk._DATASET_PIPELINES[:] = saved


# -- loader ------------------------------------------------------------------------------------


def test_loads_a_bt_file_unchanged(tmp_path):
    path = write_pipeline(tmp_path, "golden.py", basic("golden"))
    (spec,) = load_pipeline_file(path)
    assert spec.name == "golden"
    assert spec.source.project_name == "app" and spec.source.scope == "span"
    assert spec.source.filter == "metadata.topic = 'x'"
    assert spec.target.dataset_name == "Golden"
    assert spec.options == PipelineOptions()
    assert spec.file == path.resolve() or spec.file == path.absolute()
    assert spec.transform(input=1, output=2, metadata=None) == {"input": 1, "expected": 2}
    assert len(spec.code_version) == 12


def test_name_defaults_to_file_stem_and_loads_do_not_leak(tmp_path):
    first = write_pipeline(tmp_path, "facet_pipeline.py", BASIC.replace("name=__NAME__,", ""))
    second = write_pipeline(tmp_path, "other.py", basic("other"))
    assert [s.name for s in load_pipeline_file(first)] == ["facet_pipeline"]
    assert [s.name for s in load_pipeline_file(second)] == ["other"]
    assert [s.name for s in load_pipeline_file(first)] == ["facet_pipeline"]


def test_code_version_changes_when_transform_changes(tmp_path):
    path = write_pipeline(tmp_path, "cv.py", basic("cv"))
    before = load_pipeline_file(path)[0].code_version
    assert load_pipeline_file(path)[0].code_version == before
    path.write_text(path.read_text().replace('"expected": output', '"expected": [output]'))
    (spec,) = load_pipeline_file(path)
    assert spec.code_version != before
    assert spec.transform(input=1, output=2, metadata=None) == {"input": 1, "expected": [2]}  # no stale bytecode


def test_code_version_covers_imported_transform(tmp_path):
    helper = write_pipeline(tmp_path, "cv_helper_mod.py", "def transform(input):\n    return {'input': input}\n")
    path = write_pipeline(
        tmp_path,
        "imp.py",
        """
        from braintrust import DatasetPipeline
        from cv_helper_mod import transform
        DatasetPipeline("imp", source={}, transform=transform, target={"dataset_name": "d"})
        """,
    )
    import sys

    before = load_pipeline_file(path)[0].code_version
    helper.write_text("def transform(input):\n    return {'input': [input]}\n")
    sys.modules.pop("cv_helper_mod", None)
    assert load_pipeline_file(path)[0].code_version != before


def test_file_directory_is_on_sys_path(tmp_path):
    write_pipeline(tmp_path, "shared_helpers_xyz.py", "PREFIX = 'p-'\n")
    path = write_pipeline(
        tmp_path,
        "uses_helper.py",
        """
        from braintrust import DatasetPipeline
        import shared_helpers_xyz
        DatasetPipeline("h", source={}, transform=lambda input: {"input": shared_helpers_xyz.PREFIX + input},
                        target={"dataset_name": "d"})
        """,
    )
    (spec,) = load_pipeline_file(path)
    assert spec.transform(input="x") == {"input": "p-x"}


@pytest.mark.parametrize(
    ("filename", "body", "needles"),
    [
        ("syntax.py", "from braintrust import DatasetPipeline\ndef broken(:\n    pass\n", ["syntax error at line 2"]),
        ("imports.py", "import definitely_not_a_module_xyz\n", ["import failed", "definitely_not_a_module_xyz", "pip install"]),
        ("empty.py", "from braintrust import DatasetPipeline\n", ["no dataset pipeline registered", "DatasetPipeline("]),
        ("raises.py", "x = 1\nraise RuntimeError('boom')\n", ["RuntimeError", "boom", "line 2"]),
        (
            "nodataset.py",
            "from braintrust import DatasetPipeline\n"
            "DatasetPipeline('p', source={}, transform=lambda: None, target={'project_name': 'x'})\n",
            ["target.dataset_name", "is required"],
        ),
        (
            "blankdataset.py",
            "from braintrust import DatasetPipeline\n"
            "DatasetPipeline('p', source={}, transform=lambda: None, target={'dataset_name': '  '})\n",
            ["target.dataset_name"],
        ),
        (
            "badscope.py",
            "from braintrust import DatasetPipeline\n"
            "DatasetPipeline('p', source={'scope': 'spans'}, transform=lambda: None, target={'dataset_name': 'd'})\n",
            ["source.scope", "'span' or 'trace'"],
        ),
        (
            "dupes.py",
            "from braintrust import DatasetPipeline\n"
            "for _ in range(2):\n"
            "    DatasetPipeline('same', source={}, transform=lambda: None, target={'dataset_name': 'd'})\n",
            ["'same'", "distinct name"],
        ),
        (
            "badoption.py",
            "from pipelines_repo import DatasetPipeline\n"
            "DatasetPipeline('p', source={}, transform=lambda: None, target={'dataset_name': 'd'}, nightly=True)\n",
            ["'nightly'", "Valid options"],
        ),
    ],
)
def test_load_errors_name_the_file_cause_and_fix(tmp_path, filename, body, needles):
    path = write_pipeline(tmp_path, filename, body)
    before = list(sdk._DATASET_PIPELINES)
    with pytest.raises(PipelineLoadError) as info:
        load_pipeline_file(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message
    assert info.value.fix
    assert sdk._DATASET_PIPELINES == before


def test_missing_and_non_python_files(tmp_path):
    with pytest.raises(PipelineLoadError, match="not found"):
        load_pipeline_file(tmp_path / "nope.py")
    other = write_pipeline(tmp_path, "pipe.mjs", "export {}\n")  # .ts/.js load through Node (test_engine_node_*)
    with pytest.raises(PipelineLoadError, match=r"\.py"):
        load_pipeline_file(other)
    upper = write_pipeline(tmp_path, "UPPER.PY", basic("upper"))
    assert load_pipeline_file(upper)[0].name == "upper"


def test_select_pipeline_messages(tmp_path):
    path = write_pipeline(
        tmp_path,
        "two.py",
        basic("a") + basic("b").replace("from braintrust import DatasetPipeline", ""),
    )
    specs = load_pipeline_file(path)
    with pytest.raises(PipelineLoadError, match=r"Multiple dataset pipelines found \(a, b\)\. Pass --name\."):
        select_pipeline(specs, None, path)
    assert select_pipeline(specs, "b", path).name == "b"
    with pytest.raises(PipelineLoadError) as info:
        select_pipeline(specs, "c", path)
    assert 'No dataset pipeline named "c" found.' in str(info.value) and "a, b" in str(info.value)


def test_discover_collects_errors_and_cross_file_duplicates(tmp_path):
    write_pipeline(tmp_path, "a.py", basic("shared"))
    write_pipeline(tmp_path, "b.py", basic("shared"))
    write_pipeline(tmp_path, "c.py", basic("c"))
    write_pipeline(tmp_path, "d.py", "raise ValueError('nope')\n")
    write_pipeline(tmp_path, "_private.py", "raise SystemExit(1)\n")
    (tmp_path / "notes.txt").write_text("not python")
    specs, errors = discover_pipelines(tmp_path)
    assert [s.name for s in specs] == ["shared", "c"]
    messages = [str(e) for e in errors]
    assert len(errors) == 2
    assert any(str(tmp_path / "b.py") in m and str(tmp_path / "a.py") in m and "'shared'" in m for m in messages)
    assert any(str(tmp_path / "d.py") in m and "nope" in m for m in messages)
    missing_specs, missing_errors = discover_pipelines(tmp_path / "missing")
    assert missing_specs == [] and "PIPELINES_DIR" in str(missing_errors[0])


# -- windows and discovery filters -----------------------------------------------------------------


def test_window_parsing_like_bt():
    assert parse_window("90") == 90
    assert parse_window("15m") == 900
    assert parse_window("2h") == 7200
    assert parse_window("1d") == 86400
    assert parse_window("2H") == 7200
    for bad in ("bad", "", "1w", "-5", "1.5h", "1–", "1é", "1🙂", "٣"):
        with pytest.raises(ValueError) as info:
            parse_window(bad)
        assert str(info.value) == f"invalid dataset pipeline pull window '{bad}'"


def test_default_filter_is_exactly_the_day_window():
    assert discovery_filter(parse_window("1d")) == {"btql": "created >= NOW() - INTERVAL 86400 SECOND"}


def test_window_and_source_filter_in_order():
    assert discovery_filter(86400, "  metadata.topic = 'test'  ") == {
        "op": "and",
        "children": [
            {"btql": "created >= NOW() - INTERVAL 86400 SECOND"},
            {"btql": "metadata.topic = 'test'"},
        ],
    }
    assert discovery_filter(60, "   ") == {"btql": "created >= NOW() - INTERVAL 60 SECOND"}


def test_root_span_ids_replace_the_window():
    expected_in = {
        "op": "in",
        "left": {"op": "ident", "name": ["root_span_id"]},
        "right": {"op": "literal", "value": ["r1", "r2"]},
    }
    assert discovery_filter(86400, None, ["r1", "r2"]) == expected_in
    assert discovery_filter(86400, "x = 1", ["r1", "r2"]) == {
        "op": "and",
        "children": [{"btql": "x = 1"}, expected_in],
    }
    assert discovery_filter(None) is None


def test_absolute_window_filter():
    window = TimeWindow.absolute(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    assert window.btql() == "created >= '2025-03-01T00:00:00.000000Z' AND created < '2025-03-02T00:00:00.000000Z'"
    assert absolute_discovery_filter(window, "is_root") == {
        "op": "and",
        "children": [{"btql": window.btql()}, {"btql": "is_root"}],
    }
    assert absolute_discovery_filter(window) == {"btql": window.btql()}
    assert window.contains("2025-03-01T23:59:59.999999Z") and not window.contains("2025-03-02T00:00:00Z")
    with pytest.raises(ValueError):
        TimeWindow.absolute(datetime(2025, 3, 2, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))


def test_relative_window_and_timestamps():
    now = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
    window = TimeWindow.relative(3600, now)
    assert window.start == datetime(2025, 3, 2, 11, 0, tzinfo=UTC) and window.end is None
    assert window.btql() == "created >= '2025-03-02T11:00:00.000000Z'"
    assert format_timestamp(datetime(2025, 1, 1, 1, 2, 3, 4)) == "2025-01-01T01:02:03.000004Z"
    assert parse_timestamp("2025-01-01T02:02:03.123456789+01:00") == datetime(2025, 1, 1, 1, 2, 3, 123456, tzinfo=UTC)


def test_window_index_finds_the_partition_of_each_timestamp():
    day0 = datetime(2025, 1, 1, tzinfo=UTC)
    days = [TimeWindow.absolute(day0 + timedelta(days=i), day0 + timedelta(days=i + 1)) for i in range(400)]
    # a gap (one day missing) and shuffled input order, as a partial backfill may give
    windows = [w for i, w in enumerate(days) if i != 200][::-1]
    index = WindowIndex(windows)
    for i in (0, 1, 199, 201, 399):
        assert index.find(format_timestamp(day0 + timedelta(days=i, hours=5))) == days[i]
    assert index.find(format_timestamp(day0 + timedelta(days=i))) == days[i]  # start is inclusive
    assert index.find(format_timestamp(day0 + timedelta(days=200, hours=1))) is None  # the gap
    assert index.find(format_timestamp(day0 + timedelta(days=400))) is None  # end is exclusive
    assert index.find("2024-12-31T23:59:59.999999Z") is None
    assert index.find("not a time") is None and index.find(None) is None


def test_window_index_keeps_first_match_for_overlapping_or_open_windows():
    a = TimeWindow.absolute(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC))
    b = TimeWindow.absolute(datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 4, tzinfo=UTC))
    assert WindowIndex([b, a]).find("2025-01-02T12:00:00Z") == b
    assert WindowIndex([a, b]).find("2025-01-02T12:00:00Z") == a
    open_start = TimeWindow.absolute(None, datetime(2025, 1, 1, tzinfo=UTC))
    assert WindowIndex([a, open_start]).find("2020-01-01T00:00:00Z") == open_start
