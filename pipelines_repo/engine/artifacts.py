"""bt's on-disk artifact layout for staged pipelines (the files are written with :mod:`engine.jsonl`).

Layout (docs/BT_COMPAT.md §5)::

    <root>/dataset_pipeline_<name>/<sha256(compact spec JSON)[:12]>/
        pull.spec.json  pulled.jsonl  pull.manifest.json
        transform.spec.json  transformed.jsonl  transform.manifest.json  errors.jsonl

``<name>`` is bt's artifact name -- the ``--name`` flag, else the pipeline file's stem (see
:func:`artifact_name`) -- with characters outside ``[A-Za-z0-9._-]`` replaced by ``_``. The spec
hash is sha256 of the spec's compact JSON in bt's field order (what ``serde_json::to_vec`` of
bt's spec struct gives), so identical arguments reuse and overwrite one directory. Specs and
manifests are camelCase pretty JSON written atomically; a manifest is written only on success
and carries epoch-second ``startedAt/updatedAt/completedAt``. Transform output goes beside its
input (bt), falling back to a hashed directory when the input path has no directory part.

One deliberate difference: :meth:`StageArtifact.begin` removes a stale manifest of the same
stage first, so a re-run that fails half way can't leave a "completed" manifest pointing at a
truncated output.

JSONL lines are compact JSON with keys sorted at every level (bt re-serializes through
``serde_json::Value``): :func:`engine.jsonl.canonical_json`.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import PipelineError
from .jsonl import compact_json, read_json, write_json_atomic

__all__ = [
    "DEFAULT_ROOT",
    "ERRORS_FILE",
    "ArtifactNotFoundError",
    "Stage",
    "StageArtifact",
    "artifact_base_dir",
    "artifact_name",
    "build_pull_spec",
    "build_transform_spec",
    "latest_completed",
    "manifest_source_org",
    "pull_artifact",
    "read_stage_manifest",
    "require_latest_completed",
    "sanitize_segment",
    "spec_hash",
    "transform_artifact",
]

Stage = Literal["pull", "transform"]

DEFAULT_ROOT = "bt-sync"
ARTIFACT_KIND = "dataset_pipeline"
SCHEMA_VERSION = 1
ERRORS_FILE = "errors.jsonl"

_OUTPUT_FILE = {"pull": "pulled.jsonl", "transform": "transformed.jsonl"}
_SPEC_FILE = {"pull": "pull.spec.json", "transform": "transform.spec.json"}
_MANIFEST_FILE = {"pull": "pull.manifest.json", "transform": "transform.manifest.json"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _stage(stage: str) -> str:
    if stage not in _OUTPUT_FILE:
        raise ValueError(f"stage must be 'pull' or 'transform' (got {stage!r})")
    return stage


def epoch_seconds() -> int:
    return int(time.time())


def sanitize_segment(value: str) -> str:
    """bt's ``sanitize_segment``: ``[^A-Za-z0-9._-]`` -> ``_``; empty -> ``_``."""
    return _UNSAFE.sub("_", value) or "_"


def artifact_name(name_flag: str | None, pipeline_path: str | os.PathLike[str] | None) -> str:
    """bt's artifact name: the ``--name`` flag, else the pipeline file's stem, else ``pipeline``.

    Note bt uses the *flag*, not the pipeline's declared name: without ``--name`` a file
    ``facet.py`` declaring ``name="x"`` still uses ``dataset_pipeline_facet``.
    """
    if name_flag:
        return name_flag
    if pipeline_path is not None:
        stem = Path(pipeline_path).stem
        if stem:
            return stem
    return "pipeline"


def artifact_base_dir(root: str | os.PathLike[str], name: str) -> Path:
    """``<root>/dataset_pipeline_<sanitized name>``."""
    return Path(root) / f"{sanitize_segment(ARTIFACT_KIND)}_{sanitize_segment(name)}"


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Full sha256 hex of the spec's compact JSON (build specs with :func:`build_pull_spec` etc.
    so the key order is bt's)."""
    return hashlib.sha256(compact_json(spec).encode("utf-8")).hexdigest()


def artifact_spec_dir(root: str | os.PathLike[str], name: str, spec: Mapping[str, Any] | str) -> Path:
    """``<root>/dataset_pipeline_<name>/<hash[:12]>`` for a spec (or an already computed hash)."""
    digest = spec if isinstance(spec, str) else spec_hash(spec)
    return artifact_base_dir(root, name) / digest[:12]


def _base_spec(
    stage: str, pipeline: str, name: str | None, cli_project: str | None, cli_org: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "kind": ARTIFACT_KIND, "pipeline": pipeline}
    if name is not None:
        spec["name"] = name
    if cli_project is not None:
        spec["cliProject"] = cli_project
    if cli_org is not None:
        spec["cliOrg"] = cli_org
    spec["stage"] = stage
    return spec


def build_pull_spec(
    *,
    pipeline: str | os.PathLike[str],
    source: Mapping[str, Any],
    window: str | None,
    limit: int | None = 100,
    root_span_ids: Sequence[str] = (),
    page_size: int = 1000,
    name: str | None = None,
    cli_project: str | None = None,
    cli_org: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """bt's pull spec: ``{schemaVersion, kind, pipeline, name?, cliProject?, cliOrg?, stage:"pull",
    source, pull:{limit, rootSpanIds, window, pageSize}}``.

    ``pipeline`` is the path as typed; ``source`` the resolved camelCase source
    (``SourceSpec.to_bt()``). ``limit=None`` / ``window=None`` are omitted (partition pulls have
    no limit and an absolute window: pass it in ``extra``, e.g. ``{"start": ..., "end": ...}``);
    ``extra`` keys are appended to ``pull``.
    """
    spec = _base_spec("pull", os.fspath(pipeline), name, cli_project, cli_org)
    spec["source"] = dict(source)
    pull: dict[str, Any] = {}
    if limit is not None:
        pull["limit"] = limit
    pull["rootSpanIds"] = list(root_span_ids)
    if window is not None:
        pull["window"] = window
    pull["pageSize"] = page_size
    pull.update(extra or {})
    spec["pull"] = pull
    return spec


def build_transform_spec(
    *,
    pipeline: str | os.PathLike[str],
    source: Mapping[str, Any],
    max_concurrency: int,
    input_path: str | os.PathLike[str],
    name: str | None = None,
    cli_project: str | None = None,
    cli_org: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """bt's transform spec: ``{..., stage:"transform", source, transform:{maxConcurrency},
    inputPath}``; ``extra`` keys (e.g. ``onError``, ``codeVersion``) are appended to ``transform``."""
    spec = _base_spec("transform", os.fspath(pipeline), name, cli_project, cli_org)
    spec["source"] = dict(source)
    spec["transform"] = {"maxConcurrency": max_concurrency, **(extra or {})}
    spec["inputPath"] = os.fspath(input_path)
    return spec


# -- stage artifacts ----------------------------------------------------------------------------


@dataclass
class StageArtifact:
    """One stage's files in its spec directory. ``begin()`` before writing output, ``complete()`` after."""

    stage: Stage
    spec: dict[str, Any]
    spec_hash: str
    spec_dir: Path
    output_path: Path
    started_at: int = field(default_factory=epoch_seconds)

    @property
    def spec_path(self) -> Path:
        return self.spec_dir / _SPEC_FILE[self.stage]

    @property
    def manifest_path(self) -> Path:
        return self.spec_dir / _MANIFEST_FILE[self.stage]

    @property
    def errors_path(self) -> Path:
        """Where a transform's skipped items are recorded (beside the output)."""
        return self.output_path.parent / ERRORS_FILE

    def write_spec(self) -> Path:
        return write_json_atomic(self.spec_path, self.spec)

    def begin(self) -> StageArtifact:
        """Create the directory, write the spec, drop a stale manifest, stamp ``startedAt``."""
        self.spec_dir.mkdir(parents=True, exist_ok=True)
        self.write_spec()
        try:
            self.manifest_path.unlink()
        except FileNotFoundError:
            pass
        self.started_at = epoch_seconds()
        return self

    def complete(
        self,
        *,
        input_path: str | os.PathLike[str] | None = None,
        refs: int | None = None,
        pages: int | None = None,
        candidates: int | None = None,
        rows: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write ``<stage>.manifest.json`` (bt's field order; ``extra`` keys appended) and return it."""
        manifest: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "specHash": self.spec_hash,
            "spec": self.spec,
            "status": "completed",
            "stage": self.stage,
        }
        if input_path is not None:
            manifest["inputPath"] = os.fspath(input_path)
        manifest["outputPath"] = os.fspath(self.output_path)
        for key, value in (("refs", refs), ("candidates", candidates), ("rows", rows), ("pages", pages)):
            if value is not None:
                manifest[key] = value
        now = epoch_seconds()
        manifest["startedAt"] = self.started_at
        manifest["updatedAt"] = now
        manifest["completedAt"] = now
        manifest.update(extra or {})
        write_json_atomic(self.manifest_path, manifest)
        return manifest


def pull_artifact(
    root: str | os.PathLike[str],
    name: str,
    spec: Mapping[str, Any],
    out: str | os.PathLike[str] | None = None,
) -> StageArtifact:
    """The pull stage's artifact: ``<root>/dataset_pipeline_<name>/<hash>/pulled.jsonl`` (or ``out``)."""
    digest = spec_hash(spec)
    spec_dir = artifact_spec_dir(root, name, digest)
    output = Path(out) if out is not None else spec_dir / _OUTPUT_FILE["pull"]
    return StageArtifact("pull", dict(spec), digest, spec_dir, output)


def transform_artifact(
    root: str | os.PathLike[str],
    name: str,
    spec: Mapping[str, Any],
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
) -> StageArtifact:
    """The transform stage's artifact, in the input file's directory (bt), or a hashed directory
    under ``root`` when the input path has no directory part. ``out`` moves only the JSONL."""
    digest = spec_hash(spec)
    parent = os.path.dirname(os.fspath(input_path))
    spec_dir = Path(parent) if parent else artifact_spec_dir(root, name, digest)
    output = Path(out) if out is not None else spec_dir / _OUTPUT_FILE["transform"]
    return StageArtifact("transform", dict(spec), digest, spec_dir, output)


def read_stage_manifest(output_path: str | os.PathLike[str], stage: Stage) -> dict[str, Any] | None:
    """The completed ``<stage>.manifest.json`` beside ``output_path``, if any (bt uses the pull
    manifest beside ``--in`` to recover the resolved source and ``cliProject``/``cliOrg``)."""
    _stage(stage)
    parent = os.path.dirname(os.fspath(output_path))
    manifest_path = Path(parent or ".") / _MANIFEST_FILE[stage]
    if not manifest_path.is_file():
        return None
    manifest = read_json(manifest_path)
    return manifest if _is_completed(manifest, stage) else None


def _is_completed(manifest: Any, stage: Stage) -> bool:
    return isinstance(manifest, dict) and manifest.get("stage") == stage and manifest.get("status") == "completed"


def manifest_source_org(manifest: Mapping[str, Any] | None) -> str | None:
    """The source org a stage manifest recorded (bt: the push target's org defaults to it)."""
    spec = (manifest or {}).get("spec") or {}
    return (spec.get("source") or {}).get("orgName")


def latest_completed(root: str | os.PathLike[str], name: str, stage: Stage) -> Path | None:
    """``--in`` default: ``outputPath`` of the newest (max ``updatedAt``) completed ``<stage>``
    manifest under ``<root>/dataset_pipeline_<name>/*/`` whose output still exists."""
    _stage(stage)
    base = artifact_base_dir(root, name)
    if not base.is_dir():
        return None
    best: tuple[int, int, Path] | None = None
    for entry in base.iterdir():
        manifest_path = entry / _MANIFEST_FILE[stage]
        if not entry.is_dir() or not manifest_path.is_file():
            continue
        try:
            manifest = read_json(manifest_path)
        except (OSError, ValueError):
            continue
        if not _is_completed(manifest, stage):
            continue
        output = manifest.get("outputPath")
        if not isinstance(output, str) or not Path(output).exists():
            continue
        updated = manifest.get("updatedAt")
        key = (updated if isinstance(updated, int) else 0, manifest_path.stat().st_mtime_ns, Path(output))
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


class ArtifactNotFoundError(PipelineError, FileNotFoundError):
    """No completed stage output to default ``--in`` to."""


def require_latest_completed(
    root: str | os.PathLike[str],
    name: str,
    stage: Stage,
    pipeline: str | os.PathLike[str],
    *,
    command: str = "bt datasets pipeline",
) -> Path:
    """:func:`latest_completed` or bt's error ``no completed dataset pipeline <stage> output found
    for '<name>'. run `<command> <stage> <file>` first or pass --in``."""
    found = latest_completed(root, name, stage)
    if found is None:
        raise ArtifactNotFoundError(
            f"no completed dataset pipeline {stage} output found for '{name}'. "
            f"run `{command} {stage} {os.fspath(pipeline)}` first or pass --in"
        )
    return found
