"""The object layout of a windowed export: deterministic names, a manifest written last, ``_SUCCESS``.

    <export_path>/date=2026-01-15/part-00000.jsonl           a daily window
    <export_path>/date=2026-01-15/hour=13/part-00000.jsonl    an hourly window
    .../_manifest.json                                        written after every data file
    .../_SUCCESS                                              empty, written after the manifest

Names depend only on the window and the file's position in it, so a re-run overwrites the same
keys instead of adding files (and deletes the higher-numbered parts of an earlier, larger run).
A window's folder is complete when its manifest exists: a run first deletes ``_SUCCESS`` and the
manifest, then writes the data, then the manifest, then ``_SUCCESS``; a run killed in between
leaves no manifest, and re-running the window completes it. Files starting with ``_`` are
ignored by Hive-style readers (Spark, DuckDB, Athena), so they never read the manifest as data.

The manifest (``version: 1``) lists the files (key, rows, bytes, sha256), the totals, the window,
its ``_xact_id`` range (the window's bounds and the min/max seen in the rows) and the export's
definition, so a consumer can verify a window without listing the folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .objects import delete_object, list_names, put_bytes, read_bytes
from .sinks import Sink

__all__ = [
    "MANIFEST", "SUCCESS", "FileEntry", "Manifest", "is_complete", "part_name", "read_manifest",
    "HashingSink", "remove_stale_parts", "start_window", "window_folder", "write_manifest",
]

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
PART_STEM = "part"


def window_folder(start: datetime, *, hourly: bool) -> str:
    """``date=YYYY-MM-DD`` (+ ``/hour=HH`` for sub-daily windows), from the window's UTC start."""
    utc = start.astimezone(UTC)
    folder = f"date={utc:%Y-%m-%d}"
    return f"{folder}/hour={utc:%H}" if hourly else folder


def part_name(folder: str, ext: str) -> str:
    """The ``file_name`` passed to ``export(..., rows_per_file=...)``: ``<folder>/part-00000.<ext>``."""
    return f"{folder}/{PART_STEM}.{ext}"


@dataclass
class FileEntry:
    key: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    automation: str
    window_start: str
    window_end: str
    xact_after: str
    xact_through: str
    format: str
    files: list[FileEntry] = field(default_factory=list)
    min_xact_id: str | None = None
    max_xact_id: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    written_at: str = ""
    version: int = 1

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> bytes:
        body = asdict(self)
        body["rows"], body["bytes"] = self.rows, self.bytes
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        body.pop("rows", None)
        body.pop("bytes", None)
        body["files"] = [FileEntry(**f) for f in body.get("files", [])]
        return cls(**body)


def start_window(sink: Sink, folder: str) -> None:
    """Mark the window incomplete before writing it: ``_SUCCESS`` first, then the manifest."""
    delete_object(sink, f"{folder}/{SUCCESS}")
    delete_object(sink, f"{folder}/{MANIFEST}")


def remove_stale_parts(sink: Sink, folder: str, keep: list[str]) -> list[str]:
    """Delete data files of the window this run did not write (an earlier run had more parts)."""
    kept = set(keep)
    stale = [n for n in list_names(sink, folder)
             if n.rsplit("/", 1)[-1].startswith(PART_STEM) and n not in kept]
    for name in stale:
        delete_object(sink, name)
    return stale


def write_manifest(sink: Sink, folder: str, manifest: Manifest) -> str:
    """The commit point: the manifest, then ``_SUCCESS``; returns the manifest's URL."""
    manifest.written_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = put_bytes(sink, f"{folder}/{MANIFEST}", manifest.to_json())
    put_bytes(sink, f"{folder}/{SUCCESS}", b"")
    return url


def read_manifest(sink: Sink, folder: str) -> Manifest | None:
    data = read_bytes(sink, f"{folder}/{MANIFEST}")
    return Manifest.from_json(data) if data is not None else None


def is_complete(sink: Sink, folder: str) -> bool:
    return read_bytes(sink, f"{folder}/{SUCCESS}") is not None and read_bytes(sink, f"{folder}/{MANIFEST}") is not None


class HashingSink:
    """A sink whose files hash and count what they write (for the manifest's sha256)."""

    def __init__(self, inner: Sink):
        self.inner, self.url = inner, inner.url
        self.digests: dict[str, str] = {}
        self.sizes: dict[str, int] = {}

    def check(self) -> None:
        self.inner.check()

    def join(self, name: str) -> str:
        return self.inner.join(name)

    def open(self, name: str) -> _HashingFile:
        return _HashingFile(self, name, self.inner.open(name))


class _HashingFile:
    def __init__(self, sink: HashingSink, name: str, inner: Any):
        self._sink, self.name, self._inner = sink, name, inner
        self._hash = hashlib.sha256()
        self.url = inner.url

    @property
    def bytes_written(self) -> int:
        return self._inner.bytes_written

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._inner.write(data)

    def close(self) -> None:
        self._inner.close()
        self._sink.digests[self.url] = self._hash.hexdigest()
        self._sink.sizes[self.url] = self._inner.bytes_written

    def abort(self) -> None:
        self._inner.abort()
