"""bt's staged commands over the engine: ``pull``, ``transform``, ``push`` with bt's artifacts.

Staged, with bt's artifact layout (``--root``, ``--in``, ``--out``; docs/BT_COMPAT.md §5)::

    pull_stage(client, spec, *, pipeline_path, name_flag=None, window, window_label=None,
               limit, root_span_ids=None, page_size=1000, root="bt-sync", out=None,
               progress=None, cli_project=None, cli_org=None) -> PullStageResult
    transform_stage(client, spec, *, pipeline_path, name_flag=None, in_path=None, out=None,
                    root="bt-sync", max_concurrency=None, on_error=None, source=None,
                    source_overrides=None, progress=None, max_error_rate=None)
                    -> TransformStageResult
    push_stage(client, spec, *, pipeline_path, name_flag=None, in_path=None, root="bt-sync",
               force=False, progress=None, push_workers=4, policy=None) -> PushResult

``pull_stage`` writes ``pulled.jsonl`` in bt's exact line shape plus the payload sidecar
``pulled.spans.jsonl`` (one :meth:`TransformItem.to_json` line per ref; its path and the sha256
of ``pulled.jsonl`` are recorded in ``pull.manifest.json``), so ``transform`` needs no refetch.
If ``pulled.jsonl`` no longer matches (edited by hand, or written by bt), ``transform`` hydrates
the refs in batches instead (:func:`engine.hydrate.hydrate_items`).

The CLI (``bt-dagster datasets pipeline pull|transform|push``) and the per-partition staging of
the Dagster assets (``orchestration/staging.py``) call these. No Dagster imports here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from .hydrate import hydrate_items
from .items import TransformItem
from .jsonl import JsonlWriter, read_jsonl, sha256_file
from .progress import Progress, as_progress, report_pull, report_push, report_transform
from .pull import PullStats, ResolvedSource, Window, pull_refs, resolve_source
from .policy import PushPolicy
from .push import DEFAULT_PUSH_WORKERS, PushResult, push_file
from .run import OnError, enforce_error_rate, span_trace_factory
from .spec import PipelineSpec, SourceSpec
from .transform import TransformStats, transform_items
from .window import TimeWindow

__all__ = [
    "PullStageResult",
    "TransformStageResult",
    "payloads_path_for",
    "pull_stage",
    "push_stage",
    "transform_stage",
]

CLI_COMMAND = "bt-dagster datasets pipeline"
PAYLOADS_SUFFIX = ".spans"


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
    progress = as_progress(progress)
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
        for item in report_pull(stream, stream, progress):
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
    progress = as_progress(progress)
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
        trace_factory=span_trace_factory(client, resolved.project_id, counter),
        max_concurrency=concurrency,
        on_error=on_error,
        errors_path=artifact.errors_path,
        on_progress=report_transform(progress),
    )
    with rows, JsonlWriter(artifact.output_path) as writer:
        for row in rows:
            writer.write(row)
    enforce_error_rate(spec, rows.stats, on_error, max_error_rate)
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
    policy: PushPolicy | None = None,
) -> PushResult:
    """bt's ``push``: ``--in`` (default: the latest completed transform) into the target
    dataset with a content-keyed checkpoint under ``root``. The target org defaults to the
    source org recorded in the transform manifest (bt). ``policy`` (default
    :meth:`PushPolicy.for_pipeline`, push state under ``root``) adds the row check: rejected rows
    go to ``quarantine.jsonl`` beside ``--in``."""
    progress = as_progress(progress)
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
        on_progress=report_push(progress),
        policy=policy or PushPolicy.for_pipeline(spec),
    )
