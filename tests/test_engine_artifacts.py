"""bt's artifact layout, manifests, --in defaults and JSONL files (docs/BT_COMPAT.md §5, §6)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from pipelines_repo.engine.artifacts import (
    ArtifactNotFoundError,
    artifact_base_dir,
    artifact_name,
    build_pull_spec,
    build_transform_spec,
    latest_completed,
    pull_artifact,
    read_stage_manifest,
    require_latest_completed,
    sanitize_segment,
    spec_hash,
    transform_artifact,
)
from pipelines_repo.engine.jsonl import JsonlError, JsonlWriter, read_jsonl, write_jsonl

SOURCE = {"projectId": "p-1", "projectName": "facet", "orgName": "acme", "scope": "span"}


def pull_spec(**overrides):
    args = dict(pipeline="pipelines/facet_pipeline.py", source=SOURCE, window="1d", limit=100, page_size=1000)
    args.update(overrides)
    return build_pull_spec(**args)


def test_sanitize_and_names():
    assert sanitize_segment("my pipeline/v2:é") == "my_pipeline_v2__"
    assert sanitize_segment("") == "_"
    assert artifact_name(None, "pipelines/facet_pipeline.py") == "facet_pipeline"
    assert artifact_name("custom", "pipelines/facet_pipeline.py") == "custom"
    assert artifact_base_dir("bt-sync", "a b").as_posix() == "bt-sync/dataset_pipeline_a_b"


def test_pull_spec_is_bt_shaped_and_hashed_compactly():
    spec = pull_spec(cli_project="proj")
    assert list(spec) == ["schemaVersion", "kind", "pipeline", "cliProject", "stage", "source", "pull"]
    assert spec["pull"] == {"limit": 100, "rootSpanIds": [], "window": "1d", "pageSize": 1000}
    compact = json.dumps(spec, separators=(",", ":"))
    assert spec_hash(spec) == hashlib.sha256(compact.encode()).hexdigest()
    assert spec_hash(spec) != spec_hash(pull_spec(window="2h"))
    assert spec_hash(spec) == spec_hash(pull_spec(cli_project="proj"))


def test_default_pull_output_path(tmp_path):
    spec = pull_spec()
    artifact = pull_artifact(tmp_path / "bt-sync", artifact_name(None, "pipelines/facet_pipeline.py"), spec)
    assert artifact.output_path == tmp_path / "bt-sync" / "dataset_pipeline_facet_pipeline" / spec_hash(spec)[:12] / "pulled.jsonl"
    custom = pull_artifact(tmp_path / "bt-sync", "facet_pipeline", spec, out=tmp_path / "mine.jsonl")
    assert custom.output_path == tmp_path / "mine.jsonl" and custom.spec_dir == artifact.spec_dir


def test_manifest_written_only_on_completion(tmp_path):
    artifact = pull_artifact(tmp_path, "facet", pull_spec()).begin()
    assert json.loads(artifact.spec_path.read_text()) == artifact.spec
    assert not artifact.manifest_path.exists()
    write_jsonl(artifact.output_path, [{"root_span_id": "r", "id": "s"}])
    manifest = artifact.complete(refs=1, pages=1)
    on_disk = json.loads(artifact.manifest_path.read_text())
    assert on_disk == manifest
    assert list(on_disk) == [
        "schemaVersion", "specHash", "spec", "status", "stage", "outputPath", "refs", "pages",
        "startedAt", "updatedAt", "completedAt",
    ]
    assert on_disk["status"] == "completed" and on_disk["stage"] == "pull"
    assert on_disk["specHash"] == spec_hash(artifact.spec)
    assert on_disk["outputPath"] == str(artifact.output_path)
    assert isinstance(on_disk["updatedAt"], int)
    assert read_stage_manifest(artifact.output_path, "pull") == on_disk
    assert read_stage_manifest(artifact.output_path, "transform") is None
    artifact.begin()  # a re-run drops the stale manifest until it completes again
    assert not artifact.manifest_path.exists()


def write_completed_pull(root, name, window, updated_at):
    artifact = pull_artifact(root, name, pull_spec(window=window)).begin()
    write_jsonl(artifact.output_path, [{"root_span_id": window}])
    artifact.complete(refs=1, pages=1)
    manifest = json.loads(artifact.manifest_path.read_text())
    manifest["updatedAt"] = updated_at
    artifact.manifest_path.write_text(json.dumps(manifest))
    return artifact


def test_in_defaults_to_latest_completed_pull(tmp_path):
    root = tmp_path / "bt-sync"
    with pytest.raises(ArtifactNotFoundError, match="no completed dataset pipeline pull output found for 'facet'"):
        require_latest_completed(root, "facet", "pull", "facet.py")
    old = write_completed_pull(root, "facet", "1d", 100)
    new = write_completed_pull(root, "facet", "2h", 200)
    gone = write_completed_pull(root, "facet", "3h", 300)
    gone.output_path.unlink()  # newest manifest, but its output no longer exists
    unfinished = pull_artifact(root, "facet", pull_spec(window="4h")).begin()
    write_jsonl(unfinished.output_path, [])  # no manifest: not completed
    assert latest_completed(root, "facet", "pull") == new.output_path
    assert require_latest_completed(root, "facet", "pull", "facet.py") == new.output_path
    assert latest_completed(root, "facet", "transform") is None
    assert latest_completed(root, "other", "pull") is None
    assert old.output_path.exists()


def test_transform_output_lands_beside_its_input(tmp_path):
    pull = write_completed_pull(tmp_path, "facet", "1d", 1)
    spec = build_transform_spec(
        pipeline="facet.py", source=SOURCE, max_concurrency=4, input_path=pull.output_path, extra={"onError": "skip"}
    )
    assert list(spec) == ["schemaVersion", "kind", "pipeline", "stage", "source", "transform", "inputPath"]
    assert spec["transform"] == {"maxConcurrency": 4, "onError": "skip"}
    artifact = transform_artifact(tmp_path, "facet", spec, pull.output_path)
    assert artifact.output_path == pull.output_path.parent / "transformed.jsonl"
    assert artifact.errors_path == pull.output_path.parent / "errors.jsonl"
    artifact.begin()
    write_jsonl(artifact.output_path, [{"id": "a"}])
    manifest = artifact.complete(input_path=pull.output_path, candidates=1, rows=1)
    assert manifest["inputPath"] == str(pull.output_path) and manifest["rows"] == 1
    assert latest_completed(tmp_path, "facet", "transform") == artifact.output_path


def test_transform_of_bare_filename_uses_hashed_dir(tmp_path):
    spec = build_transform_spec(pipeline="facet.py", source=SOURCE, max_concurrency=1, input_path="pulled.jsonl")
    artifact = transform_artifact(tmp_path, "facet", spec, "pulled.jsonl")
    assert artifact.spec_dir == tmp_path / "dataset_pipeline_facet" / spec_hash(spec)[:12]
    here = transform_artifact(tmp_path, "facet", spec, "./pulled.jsonl")
    assert str(here.spec_dir) == "."


def test_jsonl_round_trip_sorted_keys_and_blank_lines(tmp_path):
    path = tmp_path / "a" / "rows.jsonl"
    with JsonlWriter(path) as writer:
        size = writer.write({"b": {"z": 1, "a": 2}, "a": "é"})
        assert path.read_text() == '{"a":"é","b":{"a":2,"z":1}}\n'  # flushed per line
        writer.write([1, 2])
    assert size == len('{"a":"é","b":{"a":2,"z":1}}\n'.encode())
    with open(path, "a") as handle:
        handle.write("\n   \n{\"c\":3}\n")
    assert list(read_jsonl(path)) == [{"a": "é", "b": {"a": 2, "z": 1}}, [1, 2], {"c": 3}]
    with open(path, "a") as handle:
        handle.write("{oops\n")
    with pytest.raises(JsonlError, match=r"line 6 from .*rows.jsonl"):
        list(read_jsonl(path))


def test_atomic_jsonl_writer(tmp_path):
    path = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError):
        with JsonlWriter(path, atomic=True) as writer:
            writer.write({"a": 1})
            assert not path.exists()
            raise RuntimeError("stop")
    assert not path.exists() and not os.listdir(tmp_path)
    assert write_jsonl(path, [{"a": 1}, {"a": 2}], atomic=True) == 2
    assert [v["a"] for v in read_jsonl(path)] == [1, 2]
    write_jsonl(tmp_path / "empty.jsonl", [])
    assert (tmp_path / "empty.jsonl").read_text() == ""
