"""Per-partition staging in bt's artifact layout, over the engine's stages (no Dagster imports).

This module has no Dagster code: it is an engine concern (bt-sync files per partition window),
kept in this room because only the Dagster assets use it and its root is ``$DAGSTER_HOME``.

Each pipeline partition has one directory, computed offline from the pipeline and the window,
and each Dagster run stages it in its own subdirectory::

    $DAGSTER_HOME/bt-sync/dataset_pipeline_<pipeline name>/<sha256(partition pull spec)[:12]>/
        runs/<run id>/
            pull.spec.json  pulled.jsonl  pulled.spans.jsonl  pull.manifest.json
            transform.spec.json  transformed.jsonl  transform.manifest.json  errors.jsonl

Per run, because two runs of the same partition may overlap (a backfill and the late-data
sensor's re-run, two launches from the UI): sharing one directory, one run's transform would
read the other's pull while it is half written. A run's files are written by that run only, so
once a stage has completed they never change, and another run may read them: a run that does
not materialize the upstream stage itself (e.g. only ``transformed_rows`` is selected) adopts
the newest completed upstream files of the partition (:func:`run_stage`, hard links). Finished
runs' directories are pruned after a push (:func:`prune_runs`), keeping the newest. Without a
run id (the CLI's commands over these files) the partition directory itself is used.

The partition pull spec is bt's pull spec (``engine.artifacts.build_pull_spec``) with the
pipeline file, the *declared* source, no limit, the page size, and ``pull.partition`` /
``pull.start`` / ``pull.end``; the resolved source (project id) goes in the manifest as
``resolvedSource``. So a downstream stage finds its partition's files without a network call,
and ``bt-dagster datasets pipeline transform|push --in <dir>/pulled.jsonl`` works on them too.

Stages:

- :func:`pull_partitions_staged`: ONE discovery sweep over the union of the windows
  (``engine.run.pull_partitions``), each item written to its partition's ``pulled.jsonl`` (bt's
  ref line) and ``pulled.spans.jsonl`` (payload sidecar), then one ``pull.manifest.json`` per
  partition. Span scope splits on the span's ``created``; trace scope on the trace origin's
  ``created`` when it falls inside the swept range, else on the discovering span's.
- :func:`transform_partition`: ``engine.stages.transform_stage`` on the partition's ``pulled.jsonl``.
- :func:`push_partitions`: ``engine.push.push_files`` of the partitions' ``transformed.jsonl``
  (the CLI's ``push`` path, checkpointed per partition, rows of many partitions sharing batches);
  a partition whose checkpoint says it already completed is pushed again (change-aware: only new
  and changed rows are sent), while an interrupted push resumes. The pipeline's push state
  (``keep_curated``) lives under the same root. Rows failing the target's enforced schemas go to
  ``quarantine.jsonl`` beside ``transformed.jsonl`` (:func:`screen_partitions` is the same
  screen, for the ``schema_valid`` check).
"""

from __future__ import annotations

import os
import shutil
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from ..client import BraintrustClient
from ..engine.artifacts import (
    DEFAULT_ROOT,
    ERRORS_FILE,
    StageArtifact,
    build_pull_spec,
    pull_artifact,
    read_stage_manifest,
    sanitize_segment,
)
from ..engine.errors import PipelineError
from ..engine.jsonl import canonical_json, read_json, sha256_file, write_json_atomic
from ..engine.pull import PullStats, ResolvedSource, resolve_source
from ..datasets.schema import target_row_check
from ..engine.policy import PushPolicy
from ..engine.push import PushFilesResult, ResolvedTarget, push_files
from ..engine.quarantine import Screened, screen_file
from ..engine.run import pull_partitions
from ..engine.stages import TransformStageResult, payloads_path_for, transform_stage
from ..engine.spec import PipelineSpec, SourceSpec
from ..engine.window import TimeWindow, WindowIndex
from ..settings import dagster_home

__all__ = [
    "MissingStageOutputError",
    "PartitionPull",
    "PartitionStage",
    "SweepResult",
    "partition_dir",
    "partition_pull_spec",
    "prune_runs",
    "pull_partitions_staged",
    "push_partitions",
    "run_ids_beside",
    "run_stage",
    "screen_partitions",
    "staging_root",
    "transform_partition",
]

PULLED_FILE = "pulled.jsonl"
TRANSFORMED_FILE = "transformed.jsonl"
RUNS_DIR = "runs"
# What each stage leaves in a run's directory: adopting a stage's output means linking these.
_PULL_FILES = ("pull.spec.json", PULLED_FILE, "pulled.spans.jsonl", "pull.manifest.json")
_TRANSFORM_FILES = ("transform.spec.json", TRANSFORMED_FILE, "transform.manifest.json", ERRORS_FILE)


class MissingStageOutputError(PipelineError, FileNotFoundError):
    """A stage's input partition was never staged (or its staging was removed)."""


def staging_root() -> Path:
    """``$DAGSTER_HOME/bt-sync`` (the bt-sync layout root for every pipeline's partitions)."""
    return dagster_home() / DEFAULT_ROOT


def _pipeline_path(spec: PipelineSpec) -> str:
    return os.fspath(spec.file) if spec.file is not None else spec.name


def partition_pull_spec(spec: PipelineSpec, key: str, window: TimeWindow) -> dict[str, Any]:
    """bt's pull spec for one partition (deterministic, offline: the declared source)."""
    bounds = window.to_json()
    return build_pull_spec(
        pipeline=_pipeline_path(spec),
        source=spec.source.to_bt(),
        window=None,
        limit=None,
        page_size=spec.options.page_size,
        name=spec.name,
        extra={"partition": key, "start": bounds["start"], "end": bounds["end"]},
    )


@dataclass(frozen=True)
class PartitionStage:
    """The files of one pipeline partition."""

    key: str
    window: TimeWindow
    dir: Path

    @property
    def pulled(self) -> Path:
        return self.dir / PULLED_FILE

    @property
    def payloads(self) -> Path:
        return payloads_path_for(self.pulled)

    @property
    def transformed(self) -> Path:
        return self.dir / TRANSFORMED_FILE

    @property
    def errors(self) -> Path:
        return self.dir / ERRORS_FILE

    def pull_manifest(self) -> dict[str, Any] | None:
        return read_stage_manifest(self.pulled, "pull")

    def transform_manifest(self) -> dict[str, Any] | None:
        return read_stage_manifest(self.transformed, "transform")


def partition_dir(
    spec: PipelineSpec,
    key: str,
    window: TimeWindow,
    root: str | os.PathLike[str] | None = None,
    *,
    run_id: str | None = None,
) -> PartitionStage:
    """The partition's staging directory: ``runs/<run_id>/`` of it for a run (see the module doc)."""
    root = Path(root) if root is not None else staging_root()
    base = pull_artifact(root, spec.name, partition_pull_spec(spec, key, window)).spec_dir
    return PartitionStage(key, window, base / RUNS_DIR / sanitize_segment(run_id) if run_id else base)


def _completed_at(directory: Path, manifest: str) -> float | None:
    path = directory / manifest
    try:
        data = read_json(path)
        return path.stat().st_mtime if data.get("status") == "completed" else None
    except (OSError, ValueError, AttributeError):
        return None


def _link(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another filesystem, or no hard links: a copy is as good (the source is final)
        shutil.copy2(source, dest)


def run_stage(spec: PipelineSpec, key: str, window: TimeWindow, run_id: str, upstream: str, *, root: str | os.PathLike[str] | None = None) -> PartitionStage:
    """This run's directory of a partition, holding a completed ``upstream`` stage (``"pull"`` or
    ``"transform"``): its own when this run produced it, else the newest completed one another run
    left (linked in, so this run's reads and writes stay in its own directory). When no run has
    completed it, the directory is returned as is and the caller reports what is missing."""
    stage = partition_dir(spec, key, window, root, run_id=run_id)
    manifest = f"{upstream}.manifest.json"
    if _completed_at(stage.dir, manifest) is not None:
        return stage
    runs = stage.dir.parent
    done = [(t, d) for d in (runs.iterdir() if runs.is_dir() else ()) if d != stage.dir and (t := _completed_at(d, manifest))]
    if not done:
        return stage
    source = max(done)[1]
    names = _PULL_FILES if upstream == "pull" else (*_PULL_FILES, *_TRANSFORM_FILES)
    stage.dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_file() and not (stage.dir / name).exists():
            _link(source / name, stage.dir / name)
    # The pull manifest names its payload sidecar by path: point it at this run's link.
    pulled = stage.dir / "pull.manifest.json"
    if pulled.is_file():
        data = read_json(pulled)
        if data.get("payloadsPath"):
            pulled.unlink()  # a link shares the source's inode: replace it, never write through it
            write_json_atomic(pulled, {**data, "payloadsPath": os.fspath(stage.payloads)})
    return stage


def prune_runs(stages: Sequence[PartitionStage], finished: Collection[str]) -> int:
    """Remove the run directories beside ``stages`` (this run's, which stays) of the ``finished``
    runs; returns how many were removed. Called after this run's push, so its directory is the
    newest complete one that later runs adopt from."""
    removed = 0
    for stage in stages:
        runs = stage.dir.parent
        if runs.name != RUNS_DIR or not runs.is_dir():
            continue
        for directory in runs.iterdir():
            if directory != stage.dir and directory.name in finished:
                shutil.rmtree(directory, ignore_errors=True)
                removed += 1
    return removed


def run_ids_beside(stages: Sequence[PartitionStage]) -> set[str]:
    """The run ids that have a directory beside ``stages`` (to ask which are still going)."""
    ids: set[str] = set()
    for stage in stages:
        runs = stage.dir.parent
        if runs.name == RUNS_DIR and runs.is_dir():
            ids.update(d.name for d in runs.iterdir() if d != stage.dir)
    return ids


# -- pull: one sweep, many partitions ---------------------------------------------------------


class _Writers:
    """Append-mode JSONL handles per path, at most ``max_open`` open at once (a long range must
    not exhaust file descriptors). A path is truncated the first time it is opened."""

    def __init__(self, max_open: int = 32):
        self._open: OrderedDict[Path, IO[str]] = OrderedDict()
        self._started: set[Path] = set()
        self._max_open = max_open

    def start(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # never truncate through a hard link another run's files share
        path.write_text("", encoding="utf-8")
        self._started.add(path)

    def write(self, path: Path, value: Any) -> None:
        handle = self._open.get(path)
        if handle is None:
            if path not in self._started:
                self.start(path)
            handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept in the LRU
            self._open[path] = handle
            while len(self._open) > self._max_open:
                _, old = self._open.popitem(last=False)
                old.close()
        else:
            self._open.move_to_end(path)
        handle.write(canonical_json(value) + "\n")

    def close(self) -> None:
        while self._open:
            _, handle = self._open.popitem()
            handle.close()


@dataclass
class PartitionPull:
    stage: PartitionStage
    refs: int = 0


@dataclass
class SweepResult:
    """One discovery sweep over several partitions. ``stats`` covers the whole sweep;
    ``unassigned`` counts refs whose time fell in no partition of the run (not written)."""

    source: ResolvedSource
    stats: PullStats
    partitions: dict[str, PartitionPull] = field(default_factory=dict)
    unassigned: int = 0


def pull_partitions_staged(
    client: BraintrustClient,
    spec: PipelineSpec,
    windows: Mapping[str, TimeWindow],
    *,
    root: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
) -> SweepResult:
    """Pull every partition in ``windows`` with one discovery sweep (see the module doc) into
    this run's directories (``run_id``), or the partition directories themselves."""
    if not windows:
        raise ValueError("no partitions to pull")
    resolved = resolve_source(client, spec.source)
    root_dir = Path(root) if root is not None else staging_root()
    artifacts: dict[str, StageArtifact] = {}
    for key, window in windows.items():
        artifact = pull_artifact(root_dir, spec.name, partition_pull_spec(spec, key, window))
        run_dir = partition_dir(spec, key, window, root_dir, run_id=run_id).dir
        artifacts[key] = replace(artifact, spec_dir=run_dir, output_path=run_dir / PULLED_FILE).begin()
    stages = {key: PartitionStage(key, windows[key], artifact.spec_dir) for key, artifact in artifacts.items()}
    key_of_window = {window: key for key, window in windows.items()}
    window_index = WindowIndex(windows.values())
    stream, pairs = pull_partitions(client, resolved, list(windows.values()), page_size=spec.options.page_size)
    result = SweepResult(source=resolved, stats=stream.stats)
    result.partitions = {key: PartitionPull(stage) for key, stage in stages.items()}
    writers = _Writers()
    try:
        for stage in stages.values():
            writers.start(stage.pulled)
            writers.start(stage.payloads)
        for window, item in pairs:
            key = None
            if resolved.scope == "trace":
                key = key_of_window.get(window_index.find((item.origin or {}).get("created")))
            if key is None and window is not None:
                key = key_of_window.get(window)
            if key is None:
                result.unassigned += 1
                continue
            part = result.partitions[key]
            writers.write(part.stage.pulled, dict(item.ref))
            writers.write(part.stage.payloads, item.to_json())
            part.refs += 1
    finally:
        writers.close()
        stream.close()
    sweep = {
        "partitions": len(windows),
        "refs": stream.stats.refs,
        "pages": stream.stats.pages,
        "requests": stream.stats.requests,
    }
    for key, part in result.partitions.items():
        artifacts[key].complete(
            refs=part.refs,
            pages=stream.stats.pages,
            extra={
                "payloadsPath": os.fspath(part.stage.payloads),
                "outputSha256": sha256_file(part.stage.pulled),
                "requests": stream.stats.requests,
                "resolvedSource": resolved.to_bt(),
                "partition": key,
                "sweep": sweep,
            },
        )
    return result


# -- transform and push, per partition ---------------------------------------------------------


def _resolved_from_manifest(manifest: Mapping[str, Any], spec: PipelineSpec) -> SourceSpec:
    data = manifest.get("resolvedSource")
    if isinstance(data, Mapping) and data.get("projectId"):
        return SourceSpec.from_bt(data)
    return spec.source


def transform_partition(
    client: BraintrustClient,
    spec: PipelineSpec,
    stage: PartitionStage,
    *,
    root: str | os.PathLike[str] | None = None,
) -> TransformStageResult:
    """``transform_stage`` over the partition's ``pulled.jsonl`` (its payload sidecar, no refetch).

    The pipeline's ``max_error_rate`` is *not* enforced here (it is an asset check that blocks
    the push, so the skipped refs stay inspectable); ``on_error='fail'`` still raises on the first
    failing ref.
    """
    manifest = stage.pull_manifest()
    if manifest is None or not stage.pulled.is_file():
        raise MissingStageOutputError(
            f"partition {stage.key} of pipeline {spec.name!r} has no completed pull in {stage.dir}. "
            "Fix: materialize its pulled_refs asset for this partition first."
        )
    return transform_stage(
        client,
        spec,
        pipeline_path=_pipeline_path(spec),
        name_flag=spec.name,
        in_path=stage.pulled,
        root=Path(root) if root is not None else staging_root(),
        source=_resolved_from_manifest(manifest, spec),
        max_error_rate=1.0,
    )


def push_partitions(
    client: BraintrustClient,
    spec: PipelineSpec,
    stages: Sequence[PartitionStage],
    target: ResolvedTarget,
    *,
    root: str | os.PathLike[str] | None = None,
) -> PushFilesResult:
    """``push_files`` of the partitions' ``transformed.jsonl`` into ``target`` (see module doc)."""
    for stage in stages:
        if stage.transform_manifest() is None or not stage.transformed.is_file():
            raise MissingStageOutputError(
                f"partition {stage.key} of pipeline {spec.name!r} has no completed transform in {stage.dir}. "
                "Fix: materialize its transformed_rows asset for this partition first."
            )
    return push_files(
        client,
        [stage.transformed for stage in stages],
        target,
        root=Path(root) if root is not None else staging_root(),
        repush_completed=True,
        batch_rows=spec.options.push_batch_rows,
        batch_bytes=spec.options.push_batch_bytes,
        policy=PushPolicy.for_pipeline(spec, row_check=target_row_check),
    )


def screen_partitions(stages: Sequence[PartitionStage], target: ResolvedTarget) -> list[Screened] | None:
    """The push's own schema screen of each partition's ``transformed.jsonl`` (``quarantine.jsonl``
    beside it), for the ``schema_valid`` check; None when the target enforces no schema."""
    check = target_row_check(target)
    if check is None:
        return None
    return [screen_file(stage.transformed, check) for stage in stages]
