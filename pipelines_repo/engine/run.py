"""Run a pipeline: streaming pull -> transform -> push, for one window or a range of partitions.

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

Three separate assets (``pulled_refs`` -> ``transformed_rows`` -> ``dataset_version``) use the
same building blocks with their own storage in between: ``pull_refs(client, spec.source,
window=TimeWindow(start, end), limit=None)`` (store ``item.to_json()`` lines), then
``transform_items(spec, items, trace_factory=make_trace_factory(make_trace_fetcher(client,
project_id), object_id=project_id), errors_path=...)`` (``TransformItem.from_json`` reads the
stored lines back), then ``push_file(client, rows_path, spec.target, root=..., default_org=...)``
(resumable) or ``push_rows(...)`` (streaming).

bt's staged commands (``pull_stage`` / ``transform_stage`` / ``push_stage``, with bt's
artifacts) are in :mod:`engine.stages`; ``progress`` is an :class:`engine.progress.Progress`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..client import BraintrustClient
from .btql import QueryCounter
from .hydrate import make_trace_fetcher
from .items import TransformItem
from .progress import Progress, as_progress, report_pull, report_push, report_transform
from .pull import PullStats, PullStream, ResolvedSource, Window, pull_refs
from .policy import PushPolicy
from .push import DEFAULT_PUSH_WORKERS, PushResult, push_rows
from .spec import PipelineSpec, SourceSpec
from .transform import TransformStats, TransformStream, make_trace_factory, transform_items
from .window import TimeWindow, WindowIndex

__all__ = [
    "OnError",
    "PartitionCounts",
    "PartitionedRunResult",
    "RunResult",
    "enforce_error_rate",
    "pull_partitions",
    "run_partitions",
    "run_pipeline",
    "span_trace_factory",
]

OnError = Literal["fail", "skip"]


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
            **{key: getattr(self.push, key) for key in _CHANGE_KEYS},
        }


_CHANGE_KEYS = ("added", "updated", "unchanged", "kept_curated", "quarantined", "quarantine_path", "previous_version")


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



def enforce_error_rate(
    spec: PipelineSpec, stats: TransformStats, on_error: OnError, max_error_rate: float | None
) -> None:
    """With ``skip``, fail after the fact when too many refs were skipped (default: the pipeline option)."""
    if on_error == "skip":
        stats.check_error_rate(spec.options.max_error_rate if max_error_rate is None else max_error_rate)


def span_trace_factory(client: BraintrustClient | None, project_id: str, counter: QueryCounter | None = None):
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
    policy: PushPolicy | None = None,
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
        report_pull(items, stream, progress),
        trace_factory=span_trace_factory(client, stream.source.project_id),
        max_concurrency=max_concurrency,
        on_error=on_error,
        errors_path=errors_path,
        on_progress=report_transform(progress),
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
            on_progress=report_push(progress),
            policy=policy or PushPolicy.for_pipeline(spec),
            prevalidated=True,  # the transform stream validated every row it yields (a row hook only counts them)
        )
    finally:
        rows.close()
        stream.close()
    enforce_error_rate(spec, rows.stats, on_error, max_error_rate)
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
    policy: PushPolicy | None = None,
) -> RunResult:
    """Streaming pull -> transform -> push for one window, writing no artifacts (bt's ``run``).

    ``window``: bt's relative seconds, a :class:`TimeWindow` (a partition's ``[start, end)``), or
    None. ``limit``: bt's ``--limit`` (None = everything in the window, what partitions use).
    ``page_size``, ``max_concurrency``, ``on_error`` default to the pipeline's options; ``skip``
    needs ``errors_path``. Memory stays flat: at most one page of refs, ``2 * max_concurrency``
    transforms and ``push_workers`` upload batches are held at once. Rows are pushed as they are
    produced, so a failing run may leave earlier rows written (deterministic ids: a re-run
    replaces them). With ``skip``, the run still fails afterwards when skipped/candidates exceeds
    ``max_error_rate`` (default: the pipeline option). ``policy``: the push's comparison, row
    check and push state (default :meth:`PushPolicy.for_pipeline`: no row check, no state).
    """
    progress = as_progress(progress)
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
        max_error_rate=max_error_rate, push_workers=push_workers, policy=policy,
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
    policy: PushPolicy | None = None,
) -> PartitionedRunResult:
    """Run many partitions as one streaming run (one sweep, one push stream); see module doc.

    Rows are attributed to the partition of the ref that produced them (matched on the row's
    ``origin.id``, which the transform always sets from the ref). Refs falling in a gap between
    non-contiguous windows are skipped. The dataset version after the run is
    ``result.result.push.version`` (one push stream, so one version for every partition).
    """
    windows = list(windows)
    progress = as_progress(progress)
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
        max_error_rate=max_error_rate, push_workers=push_workers, row_hook=tally, policy=policy,
    )
    return PartitionedRunResult(result=result, partitions=counts)
