"""One window of an export automation: the rows written in it -> deterministic files, a manifest, ``_SUCCESS``.

    result = export_window(client, spec, start, end)           # spec: an ExportAutomationSpec
    result.rows, result.files, result.bytes, result.manifest_url, result.folder

The rows are those whose ``_xact_id`` lies in the window (``windows.xact_range``), so a row
written or updated after its window was exported lands in the window of that later write. For
``log_traces`` a trace with any span written in the window is exported whole (rolled up: one row).
For a dataset the window holds the rows added or changed in it (deleted rows are not exported);
``full_snapshot=True`` instead exports the whole dataset as of the window's end into the window's
folder. The order of writes (``layout``) makes a killed run leave no manifest, and a re-run
complete the window with the same keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..client import BraintrustClient
from .automation import ExportAutomationSpec, inject_xact_filter
from .errors import ExportOptionsError
from .layout import HashingSink, FileEntry, Manifest, part_name, remove_stale_parts, start_window, window_folder, write_manifest
from .run import export
from .sinks import Sink, open_sink
from .sources import DatasetSource, QuerySource, SpanSource, TraceSource
from .windows import XactRange, xact_range

__all__ = ["WindowExport", "export_window", "resolve_ids", "source_for"]


@dataclass
class WindowExport:
    folder: str
    manifest_url: str
    rows: int
    files: int
    bytes: int
    paths: list[str] = field(default_factory=list)
    xact: XactRange | None = None
    min_xact_id: str | None = None
    max_xact_id: str | None = None
    stale_removed: int = 0
    seconds: float = 0.0
    snapshot: bool = False


def resolve_ids(client: BraintrustClient, spec: ExportAutomationSpec) -> dict[str, str]:
    """The project id (and the dataset id for a dataset export); never creates anything."""
    project = client.get_project(name=spec.project)
    if project is None:
        raise ExportOptionsError(f"project {spec.project!r}", "does not exist",
                                 "check ExportAutomation(project=...) (an export never creates it)")
    ids = {"project_id": project["id"]}
    if spec.kind == "dataset":
        name = spec.export_definition.dataset_name or ""
        found = client.find_dataset(project["id"], name)
        if found is None:
            raise ExportOptionsError(f"dataset {name!r} in project {spec.project!r}", "does not exist",
                                     "check export_definition.dataset_name")
        ids["dataset_id"] = found["id"]
    return ids


def source_for(spec: ExportAutomationSpec, ids: dict[str, str], xr: XactRange, *, full_snapshot: bool = False) -> Any:
    """The export room's source for one window of ``spec``."""
    kind = spec.kind
    if kind == "log_spans":
        return SpanSource(ids["project_id"], filter_sql=xr.filter_sql(), name="part")
    if kind == "log_traces":
        return TraceSource(ids["project_id"], filter_sql=xr.filter_sql(), name="part")
    if kind == "dataset":
        if full_snapshot:
            return DatasetSource(ids["dataset_id"], version=str(xr.through), name="part")
        return DatasetSource(ids["dataset_id"], filter_sql=xr.filter_sql(), name="part")
    text = inject_xact_filter(spec.export_definition.btql_query or "", xr.filter_sql())
    return QuerySource(text.replace("{project_id}", ids["project_id"]), name="part")


class _Observed:
    """A source that notes the ``_xact_id`` range of the rows it yields."""

    def __init__(self, inner: Any):
        self.inner, self.name, self.columns = inner, inner.name, inner.columns
        self.low: int | None = None
        self.high: int | None = None

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        for batch in self.inner.batches(client, batch_size):
            for row in batch:
                value = row.get("_xact_id")
                if value is not None and str(value).isdigit():
                    x = int(value)
                    self.low = x if self.low is None or x < self.low else self.low
                    self.high = x if self.high is None or x > self.high else self.high
            yield batch


def _file_rows(total: int, files: int, per_file: int) -> list[int]:
    """Rows per file: export() fills each file to ``per_file`` before the next (one empty file if none)."""
    return [min(per_file, max(total - i * per_file, 0)) for i in range(files)]


def export_window(
    client: BraintrustClient,
    spec: ExportAutomationSpec,
    start: datetime,
    end: datetime,
    *,
    sink: Sink | None = None,
    full_snapshot: bool = False,
    ids: dict[str, str] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> WindowExport:
    """Export the window ``[start, end)`` of ``spec`` (see the module doc)."""
    if full_snapshot and spec.kind != "dataset":
        raise ExportOptionsError("full_snapshot", f"applies to dataset exports, not {spec.kind}",
                                 "drop full_snapshot, or export a dataset")
    started = time.perf_counter()
    xr = xact_range(start, end)
    ids = ids or resolve_ids(client, spec)
    target = sink if sink is not None else open_sink(spec.resolved_path())
    folder = window_folder(start, hourly=spec.hourly)
    source = _Observed(source_for(spec, ids, xr, full_snapshot=full_snapshot))
    target.check()
    start_window(target, folder)
    hashing = HashingSink(target)
    result = export(client, source, hashing, fmt=spec.format, file_name=part_name(folder, spec.format),
                    rows_per_file=spec.rows_per_file, batch_size=spec.batch_size, on_batch=on_batch)
    keys = [f"{folder}/part-{i:05d}.{spec.format}" for i in range(result.files)]
    stale = remove_stale_parts(target, folder, keys)
    rows = _file_rows(result.rows, result.files, spec.rows_per_file)
    sizes = _sizes(result.paths, hashing)
    manifest = Manifest(
        automation=spec.name, window_start=start.isoformat(), window_end=end.isoformat(),
        xact_after=str(xr.after), xact_through=str(xr.through), format=spec.format,
        files=[FileEntry(key=k, rows=r, bytes=sizes[p][0], sha256=sizes[p][1]) for k, r, p in zip(keys, rows, result.paths)],
        min_xact_id=None if source.low is None else str(source.low),
        max_xact_id=None if source.high is None else str(source.high),
        definition={**spec.definition(), "mode": "snapshot" if full_snapshot else "changes"},
    )
    url = write_manifest(target, folder, manifest)
    return WindowExport(
        folder=folder, manifest_url=url, rows=result.rows, files=result.files, bytes=result.bytes, paths=result.paths,
        xact=xr, min_xact_id=manifest.min_xact_id, max_xact_id=manifest.max_xact_id, stale_removed=len(stale),
        seconds=time.perf_counter() - started, snapshot=full_snapshot,
    )


def _sizes(paths: list[str], hashing: HashingSink) -> dict[str, tuple[int, str]]:
    return {p: (hashing.sizes.get(p, 0), hashing.digests.get(p, "")) for p in paths}
