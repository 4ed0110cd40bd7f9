"""TypeScript/JavaScript pipeline files: loading (specs, options, code versions, broken files, Node checks).

Each test writes its own files under tmp_path; Node runs them through pipelines_repo/node.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from helpers import EXAMPLES, REPO, write_pipeline
from pipelines_repo.engine import node_env, node_loader
from pipelines_repo.engine.loader import PipelineLoadError, discover_declarations, load_pipeline_file, select_pipeline

# Tests that start Node; the ones about a missing or old Node run everywhere.
needs_node = pytest.mark.skipif(node_env._node_binary() is None, reason="needs Node 18+ (.ci/run installs it)")

TWO = """
import { DatasetPipeline } from "braintrust";
DatasetPipeline({ name: "first", source: { projectName: "P" }, transform: ({ input }) => ({ input }),
                  target: { datasetName: "D1" } });
DatasetPipeline({ name: "second", source: { projectName: "P", scope: "trace" }, transform: () => null,
                  target: { datasetName: "D2", projectName: "Q" } });
export const dagster = { second: { partitions: "hourly", schedule_hour: 5 } };
"""


@pytest.fixture(autouse=True)
def listing_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "listing-cache"
    monkeypatch.setenv(node_loader.CACHE_ENV, str(cache))
    node_loader._LISTINGS.clear()
    return cache


@needs_node
def test_the_documented_example_gives_the_python_examples_spec() -> None:
    (ts,) = load_pipeline_file(REPO / "tests" / "data" / "pipeline.ts")
    (py,) = load_pipeline_file(EXAMPLES / "support_cases.py")
    assert (ts.name, ts.source, ts.target, ts.options) == (py.name, py.source, py.target, py.options)
    assert ts.file == (REPO / "tests" / "data" / "pipeline.ts").resolve() and len(ts.code_version) == 12


@needs_node
def test_two_pipelines_per_file_options_by_name_and_selection(tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, "two.ts", TWO)
    specs = load_pipeline_file(path)
    assert [s.name for s in specs] == ["first", "second"]
    assert specs[1].source.scope == "trace" and specs[1].target.project_name == "Q"
    assert specs[0].options.partitions == "daily" and (specs[1].options.partitions, specs[1].options.schedule_hour) == ("hourly", 5)
    assert select_pipeline(specs, "second").name == "second"
    with pytest.raises(PipelineLoadError, match="Multiple dataset pipelines found"):
        select_pipeline(specs, None)
    assert specs[0].code_version != specs[1].code_version


@needs_node
def test_one_options_object_applies_to_every_pipeline_and_is_validated(tmp_path: Path) -> None:
    body = TWO.replace('{ second: { partitions: "hourly", schedule_hour: 5 } }', '{ on_error: "skip", max_concurrency: 3 }')
    specs = load_pipeline_file(write_pipeline(tmp_path, "all.ts", body))
    assert {(s.options.on_error, s.options.max_concurrency) for s in specs} == {("skip", 3)}
    bad = TWO.replace('{ second: { partitions: "hourly", schedule_hour: 5 } }', '{ partition: "daily" }')
    with pytest.raises(PipelineLoadError, match=r"export const dagster.*'partition' \(did you mean 'partitions'\?\)"):
        load_pipeline_file(write_pipeline(tmp_path, "bad.ts", bad))


@pytest.mark.parametrize(
    "filename, body",
    [
        ("esm.ts", 'import { DatasetPipeline } from "braintrust";\nDatasetPipeline({ name: "m", source: { projectName: "P" }, '
         'transform: ({ input }) => ({ input }), target: { datasetName: "D" } });\n'),
        ("esm.mjs-style.js", 'import { DatasetPipeline } from "braintrust";\nDatasetPipeline({ name: "m", source: { projectName: "P" }, '
         'transform: ({ input }) => ({ input }), target: { datasetName: "D" } });\n'),
        ("cjs.js", 'const { DatasetPipeline } = require("braintrust");\nDatasetPipeline({ name: "m", source: { projectName: "P" }, '
         'transform: ({ input }) => ({ input }), target: { datasetName: "D" } });\nmodule.exports.dagster = { partitions: "weekly" };\n'),
        ("component.tsx", 'import { DatasetPipeline } from "braintrust";\nconst tag = <T,>(x: T): T => x;\n'
         'DatasetPipeline({ name: "m", source: { projectName: "P" }, transform: ({ input }) => ({ input: tag(input) }), '
         'target: { datasetName: "D" } });\n'),
    ],
)
@needs_node
def test_esm_and_commonjs_files_load(tmp_path: Path, filename: str, body: str) -> None:
    (spec,) = load_pipeline_file(write_pipeline(tmp_path, filename, body))
    assert spec.name == "m" and spec.target.dataset_name == "D"
    if filename == "cjs.js":
        assert spec.options.partitions == "weekly"


@needs_node
def test_a_package_json_with_type_module_resolves_braintrust_through_the_hook(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"type": "module"}')
    body = 'import { DatasetPipeline } from "braintrust";\nDatasetPipeline({ source: { projectName: "P" }, transform: () => null, target: { datasetName: "D" } });\n'
    (spec,) = load_pipeline_file(write_pipeline(tmp_path, "typed.js", body))
    assert spec.name == "typed"  # unnamed: the file stem, like bt


@needs_node
def test_syntax_error_is_a_broken_file_and_python_pipelines_still_load(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "broken.ts", 'import { DatasetPipeline } from "braintrust";\nDatasetPipeline({ name: "x", \n')
    (EXAMPLES / "support_cases.py").read_text()
    write_pipeline(tmp_path, "support_cases.py", (EXAMPLES / "support_cases.py").read_text())
    found = discover_declarations(tmp_path)
    assert [s.name for s in found.pipelines] == ["support-cases"]
    (error,) = found.errors
    assert error.path.name == "broken.ts" and "failed to load in Node" in error.cause
    assert error.fix == "Fix the TypeScript/JavaScript syntax in the file."


@needs_node
def test_syntax_error_becomes_the_broken_file_asset(tmp_path: Path) -> None:
    from pipelines_repo.orchestration.compiler import build_definitions

    write_pipeline(tmp_path, "broken.ts", "export const = 1;\n")
    write_pipeline(tmp_path, "support_cases.py", (EXAMPLES / "support_cases.py").read_text())
    defs = build_definitions(tmp_path, strict=False)
    keys = {"/".join(key.path) for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert any("broken" in key for key in keys), keys
    assert any(key.startswith("support_cases/") for key in keys)


@needs_node
def test_import_error_and_no_pipeline(tmp_path: Path) -> None:
    with pytest.raises(PipelineLoadError, match="Cannot find") as info:
        load_pipeline_file(write_pipeline(tmp_path, "imp.ts", 'import x from "no-such-package-xyz";\nconsole.log(x);\n'))
    assert "install the package" in str(info.value)
    with pytest.raises(PipelineLoadError, match="no dataset pipeline registered"):
        load_pipeline_file(write_pipeline(tmp_path, "empty.ts", "export const a: number = 1;\n"))
    with pytest.raises(PipelineLoadError, match=r"target\.datasetName: is required"):
        load_pipeline_file(write_pipeline(tmp_path, "bad.ts", 'import { DatasetPipeline } from "braintrust";\n'
                                          'DatasetPipeline({ source: {}, transform: () => null, target: {} } as any);\n'))


def _fake_node(tmp_path: Path, version: str) -> Path:
    path = tmp_path / "fake-node"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.mark.parametrize("node", ["missing", "v16.20.2"])
def test_without_node_or_with_an_old_one_ts_files_say_what_to_install(tmp_path, monkeypatch, node) -> None:
    binary = tmp_path / "no-node" if node == "missing" else _fake_node(tmp_path, node)
    monkeypatch.setenv(node_env.NODE_ENV, str(binary))
    monkeypatch.setattr(node_env, "_CHECKED", {})
    write_pipeline(tmp_path / "p", "pipeline.ts", (REPO / "tests" / "data" / "pipeline.ts").read_text())
    write_pipeline(tmp_path / "p", "support_cases.py", (EXAMPLES / "support_cases.py").read_text())
    found = discover_declarations(tmp_path / "p")
    assert [s.name for s in found.pipelines] == ["support-cases"]  # the Python pipeline still loads
    (error,) = found.errors
    assert "Node.js 18 or later" in error.cause and (str(binary) if node == "missing" else node) in error.cause
    assert "apt-get install nodejs" in error.fix and "npm ci" in error.fix


@needs_node
def test_code_version_follows_local_imports_and_the_listing_is_cached(tmp_path: Path, monkeypatch) -> None:
    write_pipeline(tmp_path / "lib", "shape.ts", "export const shape = (x: unknown) => ({ input: x });\n")
    path = write_pipeline(tmp_path, "uses.ts", 'import { DatasetPipeline } from "braintrust";\nimport { shape } from "./lib/shape";\n'
                          'DatasetPipeline({ source: { projectName: "P" }, transform: ({ input }) => shape(input), target: { datasetName: "D" } });\n')
    first = load_pipeline_file(path)[0].code_version
    starts = []
    real_start = node_loader.NodeRunner.start
    monkeypatch.setattr(node_loader.NodeRunner, "start", lambda file, **kw: starts.append(file) or real_start(file, **kw))
    node_loader._LISTINGS.clear()  # a fresh process: only the disk cache is left
    assert load_pipeline_file(path)[0].code_version == first and starts == []
    (tmp_path / "lib" / "shape.ts").write_text("export const shape = (x: unknown) => ({ input: x, expected: 1 });\n")
    assert load_pipeline_file(path)[0].code_version != first and len(starts) == 1


@needs_node
def test_a_helper_file_prefixed_with_underscore_and_declaration_files_are_not_pipelines(tmp_path: Path) -> None:
    write_pipeline(tmp_path, "_helpers.ts", "export const a = 1;\n")
    write_pipeline(tmp_path, "types.d.ts", "declare const b: number;\n")
    write_pipeline(tmp_path, "pipeline.ts", (REPO / "tests" / "data" / "pipeline.ts").read_text())
    found = discover_declarations(tmp_path)
    assert [s.name for s in found.pipelines] == ["support-cases"] and not found.errors


def test_mjs_is_refused_like_bt(tmp_path: Path) -> None:
    with pytest.raises(PipelineLoadError, match="unsupported pipeline file extension '.mjs'"):
        load_pipeline_file(write_pipeline(tmp_path, "x.mjs", "export {};\n"))


def test_node_env_points_at_the_room() -> None:
    assert node_env.RUNNER_DIR == REPO / "pipelines_repo" / "node"
    assert os.path.isfile(node_env.RUNNER_DIR / "package-lock.json")
