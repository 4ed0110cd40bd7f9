"""Run a pipeline: streaming pull -> transform -> push, and the staged (artifact) variants.

These are the functions both the CLI (``bt-dagster datasets pipeline ...``) and the Dagster
assets call. No Dagster imports here.

One partition, end to end, no artifacts (bt's ``run``; what a Dagster partition run calls)::

    run_pipeline(spec, client, *, window, limit, root_span_ids=None, page_size=None,
                 max_concurrency=None, on_error=None, errors_path=None, progress=None,
                 max_error_rate=None, push_workers=4) -> RunResult

    # a daily partition:
    run_pipeline(spec, client, window=TimeWindow(start, end), limit=None,
                 errors_path=<run dir>/errors.jsonl)

A range of partitions in one run (a backfill): one discovery sweep over the union window, each
ref assigned to the partition holding the ``created`` of the span that discovered it, rows
pushed in one stream (same dataset), counts reported per partition::

    run_partitions(spec, client, windows: Sequence[TimeWindow], *, page_size=None,
                   max_concurrency=None, on_error=None, errors_path=None, progress=None,
                   max_error_rate=None, push_workers=4) -> PartitionedRunResult
    pull_partitions(client, source, windows, *, page_size=1000) -> (PullStream, iterator of
                   (TimeWindow | None, TransformItem))      # the split alone

Staged, with bt's artifact layout (``--root``, ``--in``, ``--out``; reference §5)::

    pull_stage(client, spec, *, pipeline_path, name_flag=None, window, window_label=None,
               limit, root_span_ids=None, page_size=1000, root="bt-sync", out=None,
               progress=None, cli_project=None, cli_org=None) -> PullStageResult
    transform_stage(client, spec, *, pipeline_path, name_flag=None, in_path=None, out=None,
                    root="bt-sync", max_concurrency=None, on_error=None, source=None,
                    source_overrides=None, progress=None, max_error_rate=None)
                    -> TransformStageResult
    push_stage(client, spec, *, pipeline_path, name_flag=None, in_path=None, root="bt-sync",
               force=False, progress=None, push_workers=4) -> PushResult

``pull_stage`` writes ``pulled.jsonl`` in bt's exact line shape plus the payload sidecar
``pulled.spans.jsonl`` (one :meth:`TransformItem.to_json` line per ref; its path and the sha256
of ``pulled.jsonl`` are recorded in ``pull.manifest.json``), so ``transform`` needs no refetch.
If ``pulled.jsonl`` no longer matches (edited by hand, or written by bt), ``transform`` hydrates
the refs in batches instead (:func:`engine.hydrate.hydrate_items`).

Three separate assets (``pulled_refs`` -> ``transformed_rows`` -> ``dataset_version``) use the
same building blocks with their own storage in between: ``pull_refs(client, spec.source,
window=TimeWindow(start, end), limit=None)`` (store ``item.to_json()`` lines), then
``transform_items(spec, items, trace_factory=make_trace_factory(make_trace_fetcher(client,
project_id), object_id=project_id), errors_path=...)`` (``TransformItem.from_json`` reads the
stored lines back), then ``push_file(client, rows_path, spec.target, root=..., default_org=...)``
(resumable) or ``push_rows(...)`` (streaming).

``progress`` is any object with ``start(stage, total=None)`` and ``update(stage, **counts)``
(stages ``pull``, ``transform``, ``push``); see ``cli/progress.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..client import BraintrustClient
from .artifacts import (
    DEFAULT_ROOT,
    artifact_name,
    build_pull_spec,
    build_transform_spec,
    manifest_source_org,
    pull_artifact,
    read_stage_manifest,
    require_latest_completed,
    transform_artifact,
)
from .btql import QueryCounter
from .hydrate import hydrate_items, make_trace_fetcher
from .items import TransformItem
from .jsonl import JsonlWriter, read_jsonl, sha256_file
from .pull import PullStats, PullStream, ResolvedSource, Window, pull_refs, resolve_source
from .push import DEFAULT_PUSH_WORKERS, PushResult, push_file, push_rows
from .spec import PipelineSpec, SourceSpec
from .transform import TransformStats, TransformStream, make_trace_factory, transform_items
from .window import TimeWindow, WindowIndex

__all__ = [
    "CLI_COMMAND",
    "PAYLOADS_SUFFIX",
    "NullProgress",
    "PartitionCounts",
    "PartitionedRunResult",
    "Progress",
    "PullStageResult",
    "RunResult",
    "TransformStageResult",
    "payloads_path_for",
    "pull_partitions",
    "pull_stage",
    "push_stage",
    "run_partitions",
    "run_pipeline",
    "transform_stage",
]

CLI_COMMAND = "bt-dagster datasets pipeline"
PAYLOADS_SUFFIX = ".spans"
OnError = Literal["fail", "skip"]


class Progress(Protocol):
    def start(self, stage: str, total: int | None = None) -> None: ...

    def update(self, stage: str, **counts: int) -> None: ...


class NullProgress:
    """Progress that shows nothing (non-TTY, ``--json``, Dagster)."""

    def start(self, stage: str, total: int | None = None) -> None:
        return None

    def update(self, stage: str, **counts: int) -> None:
        return None


def _progress(progress: Progress | None) -> Progress:
    return progress if progress is not None else NullProgress()


# -- results ------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One streaming run. ``requests`` = every HTTP request the client made during the run
    (retries included); ``pull.requests`` / ``push.requests`` are the stages' logical calls."""

    pipeline: str
    source: ResolvedSource
    pull: PullStats
    transform: TransformStats
    push: PushResult
    requests: int
    seconds: float
    errors_path: str | None = None

    def summary(self) -> dict[str, Any]:
        """Flat, JSON-ready summary (the CLI prints it; Dagster uses it as metadata)."""
        return {
            "pipeline": self.pipeline,
            "scope": self.source.scope,
            "source_project": self.source.project_name,
            "source_project_id": self.source.project_id,
            "refs": self.pull.refs,
            "pages": self.pull.pages,
            "candidates": self.transform.candidates,
            "rows": self.push.rows_pushed,
            "skipped": self.transform.skipped,
            "errors_path": self.errors_path if self.transform.skipped else None,
            "target_project": self.push.project_name,
            "dataset": self.push.dataset_name,
            "dataset_id": self.push.dataset_id,
            "dataset_version": self.push.version,
            "dataset_url": self.push.dataset_url,
            "batches": self.push.batches,
            "requests": self.requests,
            "pull_requests": self.pull.requests,
        }


@dataclass
class PartitionCounts:
    refs: int = 0
    rows: int = 0


@dataclass
class PartitionedRunResult:
    """A multi-partition run: the overall :class:`RunResult` plus per-window counts
    (``partitions`` keyed by the window, in the order given; every window is present)."""

    result: RunResult
    partitions: dict[TimeWindow, PartitionCounts] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        out = self.result.summary()
        out["partitions"] = {
            str(window): {"refs": c.refs, "rows": c.rows} for window, c in self.partitions.items()
        }
        return out


# -- streaming run ------------------------------------------------------------------------------


def _report_pull(items: Iterable[TransformItem], stream: PullStream, progress: Progress) -> Iterator[TransformItem]:
    for item in items:
        progress.update("pull", refs=stream.stats.refs, pages=stream.stats.pages)
        yield item
    progress.update("pull", refs=stream.stats.refs, pages=stream.stats.pages)


def _report_transform(progress: Progress) -> Callable[[TransformStats], None]:
    def on_transform(stats: TransformStats) -> None:
        progress.update("transform", candidates=stats.candidates, rows=stats.rows, skipped=stats.skipped)

    return on_transform


def _report_push(progress: Progress) -> Callable[[int, int], None]:
    return lambda rows, batches: progress.update("push", rows=rows, batches=batches)


def _enforce_error_rate(
    spec: PipelineSpec, stats: TransformStats, on_error: OnError, max_error_rate: float | None
) -> None:
    """With ``skip``, fail after the fact when too many refs were skipped (default: the pipeline option)."""
    if on_error == "skip":
        stats.check_error_rate(spec.options.max_error_rate if max_error_rate is None else max_error_rate)


def _span_trace_factory(client: BraintrustClient | None, project_id: str, counter: QueryCounter | None = None):
    fetch = make_trace_fetcher(client, project_id, counter=counter) if client is not None else None
    return make_trace_factory(fetch, object_id=project_id)


def _stream(
    spec: PipelineSpec,
    client: BraintrustClient,
    items: Iterable[TransformItem],
    stream: PullStream,
    *,
    max_concurrency: int | None,
    on_error: OnError | None,
    errors_path: str | os.PathLike[str] | None,
    progress: Progress,
    max_error_rate: float | None,
    push_workers: int,
    row_hook: Any = None,
) -> RunResult:
    started = time.monotonic()
    before = client.stats.requests
    on_error = on_error or spec.options.on_error
    if on_error == "skip" and errors_path is None:
        raise ValueError("on_error='skip' needs errors_path (where skipped refs are recorded as errors.jsonl)")
    progress.start("pull")
    progress.start("transform")
    rows: TransformStream = transform_items(
        spec,
        _report_pull(items, stream, progress),
        trace_factory=_span_trace_factory(client, stream.source.project_id),
        max_concurrency=max_concurrency,
        on_error=on_error,
        errors_path=errors_path,
        on_progress=_report_transform(progress),
    )
    progress.start("push")
    try:
        pushed = push_rows(
            client,
            row_hook(rows) if row_hook is not None else rows,
            spec.target,
            default_org=stream.source.org_name,
            batch_rows=spec.options.push_batch_rows,
            batch_bytes=spec.options.push_batch_bytes,
            max_workers=push_workers,
            on_progress=_report_push(progress),
        )
    finally:
        rows.close()
        stream.close()
    _enforce_error_rate(spec, rows.stats, on_error, max_error_rate)
    return RunResult(
        pipeline=spec.name,
        source=stream.source,
        pull=stream.stats,
        transform=rows.stats,
        push=pushed,
        requests=client.stats.requests - before,
        seconds=time.monotonic() - started,
        errors_path=os.fspath(errors_path) if errors_path is not None else None,
    )


def run_pipeline(
    spec: PipelineSpec,
    client: BraintrustClient,
    *,
    window: Window,
    limit: int | None,
    root_span_ids: Sequence[str] | None = None,
    page_size: int | None = None,
    max_concurrency: int | None = None,
    on_error: OnError | None = None,
    errors_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    max_error_rate: float | None = None,
    push_workers: int = DEFAULT_PUSH_WORKERS,
) -> RunResult:
    """Streaming pull -> transform -> push for one window, writing no artifacts (bt's ``run``).

    ``window``: bt's relative seconds, a :class:`TimeWindow` (a partition's ``[start, end)``), or
    None. ``limit``: bt's ``--limit`` (None = everything in the window, what partitions use).
    ``page_size``, ``max_concurrency``, ``on_error`` default to the pipeline's options; ``skip``
    needs ``errors_path``. Memory stays flat: at most one page of refs, ``2 * max_concurrency``
    transforms and ``push_workers`` upload batches are held at once. Rows are pushed as they are
    produced, so a failing run may leave earlier rows written (deterministic ids: a re-run
    replaces them). With ``skip``, the run still fails afterwards when skipped/candidates exceeds
    ``max_error_rate`` (default: the pipeline option).
    """
    progress = _progress(progress)
    stream = pull_refs(
        client,
        spec.source,
        window=window,
        limit=limit,
        root_span_ids=root_span_ids,
        page_size=page_size or spec.options.page_size,
    )
    return _stream(
        spec, client, stream, stream,
        max_concurrency=max_concurrency, on_error=on_error, errors_path=errors_path, progress=progress,
        max_error_rate=max_error_rate, push_workers=push_workers,
    )


def _union(windows: Sequence[TimeWindow]) -> TimeWindow:
    if not windows:
        raise ValueError("windows must not be empty")
    starts = [w.start for w in windows]
    ends = [w.end for w in windows]
    start = None if any(s is None for s in starts) else min(starts)  # type: ignore[type-var]
    end = None if any(e is None for e in ends) else max(ends)  # type: ignore[type-var]
    return TimeWindow(start=start, end=end)


def pull_partitions(
    client: BraintrustClient,
    source: SourceSpec | ResolvedSource,
    windows: Sequence[TimeWindow],
    *,
    page_size: int = 1000,
) -> tuple[PullStream, Iterator[tuple[TimeWindow | None, TransformItem]]]:
    """One discovery sweep over the union of ``windows`` (no limit); each item comes with the
    window holding its discovery ``created`` (None only if a window gap holds it)."""
    windows = list(windows)
    stream = pull_refs(client, source, window=_union(windows), limit=None, page_size=page_size)

    index = WindowIndex(windows)

    def pairs() -> Iterator[tuple[TimeWindow | None, TransformItem]]:
        for item, created in stream.iter_with_created():
            yield index.find(created), item

    return stream, pairs()


def run_partitions(
    spec: PipelineSpec,
    client: BraintrustClient,
    windows: Sequence[TimeWindow],
    *,
    page_size: int | None = None,
    max_concurrency: int | None = None,
    on_error: OnError | None = None,
    errors_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    max_error_rate: float | None = None,
    push_workers: int = DEFAULT_PUSH_WORKERS,
) -> PartitionedRunResult:
    """Run many partitions as one streaming run (one sweep, one push stream); see module doc.

    Rows are attributed to the partition of the ref that produced them (matched on the row's
    ``origin.id``, which the transform always sets from the ref). Refs falling in a gap between
    non-contiguous windows are skipped. The dataset version after the run is
    ``result.result.push.version`` (one push stream, so one version for every partition).
    """
    windows = list(windows)
    progress = _progress(progress)
    stream, pairs = pull_partitions(client, spec.source, windows, page_size=page_size or spec.options.page_size)
    counts = {window: PartitionCounts() for window in windows}
    recent: dict[str, TimeWindow | None] = {}  # origin id -> window, for refs still in the transform

    def items() -> Iterator[TransformItem]:
        for window, item in pairs:
            if window is None:
                continue  # in a gap between non-contiguous windows: not asked for
            counts[window].refs += 1
            origin = item.origin or {}
            if isinstance(origin.get("id"), str):
                recent[origin["id"]] = window
                while len(recent) > 10_000:  # refs finish in order; old ones are done
                    recent.pop(next(iter(recent)))
            yield item

    def tally(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            origin = row.get("origin")
            window = recent.get(origin.get("id")) if isinstance(origin, Mapping) else None
            if window is not None:
                counts[window].rows += 1
            yield row

    result = _stream(
        spec, client, items(), stream,
        max_concurrency=max_concurrency, on_error=on_error, errors_path=errors_path, progress=progress,
        max_error_rate=max_error_rate, push_workers=push_workers, row_hook=tally,
    )
    return PartitionedRunResult(result=result, partitions=counts)


# -- staged: pull -------------------------------------------------------------------------------


def payloads_path_for(pulled_path: str | os.PathLike[str]) -> Path:
    """``pulled.jsonl`` -> ``pulled.spans.jsonl`` (beside it)."""
    path = Path(pulled_path)
    return path.with_name(f"{path.stem}{PAYLOADS_SUFFIX}{path.suffix or '.jsonl'}")


@dataclass
class PullStageResult:
    out: Path
    payloads: Path
    spec_dir: Path
    source: ResolvedSource
    stats: PullStats
    manifest: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """bt's pull summary keys plus ours (``payloads``, ``pull_requests``)."""
        return {
            "out": os.fspath(self.out),
            "pages": self.stats.pages,
            "refs": self.stats.refs,
            "scope": self.source.scope,
            "source_project": self.source.project_name,
            "source_project_id": self.source.project_id,
            "payloads": os.fspath(self.payloads),
            "pull_requests": self.stats.requests,
        }


def _window_spec(window: Window, window_label: str | None) -> tuple[str | None, dict[str, Any]]:
    if isinstance(window, tuple):
        window = TimeWindow.absolute(*window)
    if isinstance(window, TimeWindow):
        data = window.to_json()
        return window_label, {key: value for key, value in data.items() if value is not None}
    if isinstance(window, int):
        return window_label if window_label is not None else f"{window}s", {}
    return window_label, {}


def pull_stage(
    client: BraintrustClient,
    spec: PipelineSpec,
    *,
    pipeline_path: str | os.PathLike[str],
    name_flag: str | None = None,
    window: Window,
    window_label: str | None = None,
    limit: int | None,
    root_span_ids: Sequence[str] | None = None,
    page_size: int = 1000,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    out: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    cli_project: str | None = None,
    cli_org: str | None = None,
) -> PullStageResult:
    """bt's ``pull``: write ``pulled.jsonl`` (+ payload sidecar) and ``pull.manifest.json``."""
    progress = _progress(progress)
    source = resolve_source(client, spec.source)
    label, extra = _window_spec(window, window_label)
    pull_spec = build_pull_spec(
        pipeline=pipeline_path,
        source=source.to_bt(),
        window=label,
        limit=limit,
        root_span_ids=list(root_span_ids or []),
        page_size=page_size,
        name=name_flag,
        cli_project=cli_project,
        cli_org=cli_org,
        extra=extra,
    )
    artifact = pull_artifact(root, artifact_name(name_flag, pipeline_path), pull_spec, out).begin()
    payloads = payloads_path_for(artifact.output_path)
    stream = pull_refs(client, source, window=window, limit=limit, root_span_ids=root_span_ids, page_size=page_size)
    progress.start("pull")
    with JsonlWriter(artifact.output_path) as refs_out, JsonlWriter(payloads, atomic=True) as payloads_out:
        for item in _report_pull(stream, stream, progress):
            refs_out.write(item.ref)
            payloads_out.write(item.to_json())
    manifest = artifact.complete(
        refs=stream.stats.refs,
        pages=stream.stats.pages,
        extra={
            "payloadsPath": os.fspath(payloads),
            "outputSha256": sha256_file(artifact.output_path),
            "requests": stream.stats.requests,
        },
    )
    return PullStageResult(
        out=artifact.output_path,
        payloads=payloads,
        spec_dir=artifact.spec_dir,
        source=source,
        stats=stream.stats,
        manifest=manifest,
    )


# -- staged: transform --------------------------------------------------------------------------


@dataclass
class TransformStageResult:
    out: Path
    input_path: Path
    spec_dir: Path
    source: ResolvedSource
    stats: TransformStats
    errors_path: Path
    used_payloads: bool
    requests: int
    manifest: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """bt's transform summary keys plus ours."""
        return {
            "candidates": self.stats.candidates,
            "out": os.fspath(self.out),
            "rows": self.stats.rows,
            "skipped": self.stats.skipped,
            "errors_path": os.fspath(self.errors_path) if self.stats.skipped else None,
            "hydrated": not self.used_payloads,
            "hydrate_requests": self.requests,
        }


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _pulled_items(
    client: BraintrustClient | None, in_path: Path, manifest: Mapping[str, Any] | None, project_id: str,
    counter: QueryCounter,
) -> tuple[Iterator[TransformItem], bool]:
    """Items for ``in_path``: from the payload sidecar when it matches, else hydrated in batches."""
    payloads = manifest.get("payloadsPath") if manifest else None
    if (
        isinstance(payloads, str)
        and Path(payloads).is_file()
        and manifest is not None
        and manifest.get("outputSha256") == sha256_file(in_path)
    ):
        return (TransformItem.from_json(value) for value in read_jsonl(payloads)), True
    if client is None:
        raise ValueError(
            f"{os.fspath(in_path)} has no matching payload sidecar, so its refs must be fetched; "
            "this needs a Braintrust client (set BRAINTRUST_API_KEY, or use the local plane)"
        )
    return hydrate_items(client, read_jsonl(in_path), project_id=project_id, counter=counter), False


def transform_stage(
    client: BraintrustClient | None,
    spec: PipelineSpec,
    *,
    pipeline_path: str | os.PathLike[str],
    name_flag: str | None = None,
    in_path: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    max_concurrency: int | None = None,
    on_error: OnError | None = None,
    source: SourceSpec | ResolvedSource | None = None,
    source_overrides: Mapping[str, str | None] | None = None,
    progress: Progress | None = None,
    max_error_rate: float | None = None,
) -> TransformStageResult:
    """bt's ``transform``: read ``--in`` (default: the latest completed pull), write
    ``transformed.jsonl`` (+ ``errors.jsonl``) beside it and ``transform.manifest.json``.

    The source is, like bt, the one in the pull manifest beside ``--in`` (already resolved),
    else ``source`` / the pipeline's, then ``source_overrides`` (bt's ``--source-*``: keys
    ``project_name``, ``project_id``, ``org_name``, ``filter``), resolved here. Skipped refs (``on_error='skip'``) are
    recorded in ``errors.jsonl`` beside the output.
    """
    progress = _progress(progress)
    name = artifact_name(name_flag, pipeline_path)
    in_file = Path(in_path) if in_path is not None else require_latest_completed(
        root, name, "pull", pipeline_path, command=CLI_COMMAND
    )
    if not in_file.is_file():
        raise FileNotFoundError(f"transform input {os.fspath(in_file)!r} not found. Fix: run `pull` first or pass --in <file>.")
    pull_manifest = read_stage_manifest(in_file, "pull")
    if source is None and pull_manifest is not None:
        source = SourceSpec.from_bt(pull_manifest.get("spec", {}).get("source", {}))
    if source is None:
        source = spec.source
    if source_overrides and any(value is not None for value in source_overrides.values()):
        if isinstance(source, ResolvedSource):
            source = source.to_spec()
        source = source.with_overrides(**source_overrides)
    if client is not None:
        resolved = resolve_source(client, source)
    elif isinstance(source, ResolvedSource):
        resolved = source
    elif source.project_id:
        resolved = ResolvedSource(
            project_id=source.project_id, project_name=source.project_name, org_name=source.org_name,
            filter=source.filter, scope=source.scope,
        )
    else:
        raise ValueError("resolving the source project by name needs a Braintrust client")
    on_error = on_error or spec.options.on_error
    concurrency = max_concurrency or spec.options.max_concurrency
    transform_spec = build_transform_spec(
        pipeline=pipeline_path,
        source=resolved.to_bt(),
        max_concurrency=concurrency,
        input_path=in_file,
        name=name_flag,
        cli_project=(pull_manifest or {}).get("spec", {}).get("cliProject"),
        cli_org=(pull_manifest or {}).get("spec", {}).get("cliOrg"),
        extra={"onError": on_error},
    )
    artifact = transform_artifact(root, name, transform_spec, in_file, out).begin()
    counter = QueryCounter()
    items, used_payloads = _pulled_items(client, in_file, pull_manifest, resolved.project_id, counter)
    total = pull_manifest.get("refs") if pull_manifest and used_payloads else None
    progress.start("transform", total=total if isinstance(total, int) else _count_lines(in_file))
    rows = transform_items(
        spec,
        items,
        trace_factory=_span_trace_factory(client, resolved.project_id, counter),
        max_concurrency=concurrency,
        on_error=on_error,
        errors_path=artifact.errors_path,
        on_progress=_report_transform(progress),
    )
    with rows, JsonlWriter(artifact.output_path) as writer:
        for row in rows:
            writer.write(row)
    _enforce_error_rate(spec, rows.stats, on_error, max_error_rate)
    manifest = artifact.complete(
        input_path=in_file,
        candidates=rows.stats.candidates,
        rows=rows.stats.rows,
        extra={"skipped": rows.stats.skipped, "errorsPath": os.fspath(artifact.errors_path)},
    )
    return TransformStageResult(
        out=artifact.output_path,
        input_path=in_file,
        spec_dir=artifact.spec_dir,
        source=resolved,
        stats=rows.stats,
        errors_path=artifact.errors_path,
        used_payloads=used_payloads,
        requests=counter.requests,
        manifest=manifest,
    )


# -- staged: push -------------------------------------------------------------------------------


def push_stage(
    client: BraintrustClient,
    spec: PipelineSpec,
    *,
    pipeline_path: str | os.PathLike[str],
    name_flag: str | None = None,
    in_path: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    force: bool = False,
    progress: Progress | None = None,
    push_workers: int = DEFAULT_PUSH_WORKERS,
) -> PushResult:
    """bt's ``push``: ``--in`` (default: the latest completed transform) into the target
    dataset with a content-keyed checkpoint under ``root``. The target org defaults to the
    source org recorded in the transform manifest (bt)."""
    progress = _progress(progress)
    in_file = Path(in_path) if in_path is not None else require_latest_completed(
        root, artifact_name(name_flag, pipeline_path), "transform", pipeline_path, command=CLI_COMMAND
    )
    default_org = manifest_source_org(read_stage_manifest(in_file, "transform"))
    progress.start("push", total=_count_lines(in_file) if in_file.is_file() else None)
    return push_file(
        client,
        in_file,
        spec.target,
        root=root,
        force=force,
        default_org=default_org,
        batch_rows=spec.options.push_batch_rows,
        batch_bytes=spec.options.push_batch_bytes,
        max_workers=push_workers,
        on_progress=_report_push(progress),
    )
