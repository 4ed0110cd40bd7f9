"""Archive before delete, through the export room; resolve a span from the archive afterwards.

    archive_day(client, archive, target, day, cutoff, policy_name) -> manifest URL
    resolve_span(archive, project_id, span_id) -> the archived row, or None

Layout (Hive-style, so query engines read it natively)::

    <path>/project=<project id>/date=YYYY-MM-DD/<spans|rows>-<stamp>.<ext>
    <path>/project=<project id>/date=YYYY-MM-DD/manifest-<stamp>.json    written last: the commit point

Every attempt writes new files under its own stamp and never overwrites: a run killed after a
day's archive but before its delete finished archives the remaining rows again next time, so
each deleted row is in at least one manifest's files. Resolving reads the manifests of a
local (or ``file://``) archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..client import BraintrustClient
from ..datasets.readers import read_records
from ..engine.window import format_timestamp
from ..export import DatasetSource, ExperimentSource, SpanSource, export, open_sink
from .plan import Target, day_window
from .spec import ArchiveSpec

__all__ = ["archive_day", "day_folder", "resolve_span"]

MANIFEST_VERSION = 1


def day_folder(archive: ArchiveSpec, project_id: str, day: date) -> str:
    return f"{archive.path.rstrip('/')}/project={project_id}/date={day.isoformat()}"


def archive_day(
    client: BraintrustClient, archive: ArchiveSpec, target: Target, day: date, cutoff: datetime, policy_name: str,
) -> dict[str, Any]:
    """Export the day's rows (up to the cutoff) and write the manifest; returns the manifest."""
    window = day_window(day, cutoff)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    if target.object_type == "project_logs":
        source: Any = SpanSource(target.object_id, window=window)
        stem = "spans"
    elif target.object_type == "experiment":  # deleted whole: every row, under its creation day
        source, stem = ExperimentSource(target.object_id), f"experiment-{target.object_id}"
    else:
        source, stem = DatasetSource(target.object_id, filter_sql=window.btql()), f"rows-{target.object_id}"
    sink = open_sink(day_folder(archive, target.project_id, day))
    ext = archive.format
    result = export(client, source, sink, fmt=archive.format, file_name=f"{stem}-{stamp}.{ext}")
    manifest = {
        "version": MANIFEST_VERSION, "policy": policy_name, "object_type": target.object_type,
        "object_id": target.object_id, "project_id": target.project_id, "project_name": target.project_name,
        "date": day.isoformat(), "window": window.to_json(), "created": format_timestamp(datetime.now(UTC)),
        "format": result.format, "rows": result.rows, "bytes": result.bytes,
        "files": [{"url": url, "name": url.rsplit("/", 1)[-1]} for url in result.paths],
    }
    name = f"manifest-{stamp}.json"
    with sink.open(name) as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode())
    manifest["url"] = sink.join(name)
    return manifest


def _rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """An archive file's rows, streamed by the datasets room's readers (Parquet JSON columns decoded)."""
    for record in read_records(path, fmt):
        yield record.values


def resolve_span(archive: ArchiveSpec, project_id: str, span_id: str) -> dict[str, Any] | None:
    """The archived row whose ``id`` or ``span_id`` is ``span_id`` (a dataset row's ``origin.id``
    is the span's row id), newest manifest first; None when no manifest lists it."""
    if not archive.is_local:
        raise ValueError(f"resolve reads local archives only; {archive.path} is an object store (sync it locally first)")
    root = archive.local_root() / f"project={project_id}"
    for manifest_path in sorted(root.glob("date=*/manifest-*.json"), reverse=True):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        for entry in manifest.get("files") or []:
            path = manifest_path.parent / entry["name"]
            if not path.exists():
                continue
            for row in _rows(path, manifest.get("format", "jsonl")):
                if span_id in (row.get("id"), row.get("span_id")):
                    return {**row, "_archive": {"manifest": str(manifest_path), "file": str(path), "date": manifest.get("date")}}
    return None
