"""The export: a source's batches -> a writer -> sink files, streamed batch by batch.

    result = export(client, source, sink, fmt="parquet", file_name="spans.parquet")
    result.rows, result.files, result.bytes, result.seconds, result.paths

Memory holds one batch (and the writer's buffers: one Parquet row group of a few batches, one
multipart part), however large the export. ``rows_per_file`` splits the output into ``<stem>-00000.<ext>``,
``<stem>-00001.<ext>``, ... (a Dagster asset writing one window per partition passes its own
deterministic ``file_name``, so a re-run overwrites). The sink is checked before the source is
read, so a missing bucket or bad credentials fail at once. On any failure the open file is aborted
and nothing half-written is published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..client import BraintrustClient
from .errors import ExportOptionsError
from .sinks import Sink
from .writers import extension, make_writer

__all__ = ["ExportResult", "Source", "export"]


class Source(Protocol):
    name: str
    columns: tuple[str, ...]

    def batches(self, client: BraintrustClient, batch_size: int = 1000): ...


@dataclass
class ExportResult:
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    paths: list[str] = field(default_factory=list)
    format: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        return out


def _names(file_name: str | None, stem: str, ext: str, split: bool) -> Callable[[int], str]:
    if file_name and not split:
        return lambda index: file_name
    if file_name:
        base, dot, suffix = file_name.partition(".")
        stem, ext = base, suffix or ext
    return lambda index: f"{stem}-{index:05d}.{ext}" if split else f"{stem}.{ext}"


def export(
    client: BraintrustClient,
    source: Source,
    sink: Sink,
    *,
    fmt: str = "jsonl",
    gzip_jsonl: bool = False,
    file_name: str | None = None,
    rows_per_file: int | None = None,
    batch_size: int = 1000,
    on_batch: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Export every row of ``source`` to ``sink`` as ``fmt``; ``on_batch(rows, bytes)`` after each batch."""
    if rows_per_file is not None and rows_per_file < 1:
        raise ExportOptionsError("--rows-per-file", "must be at least 1", "pass a positive number of rows")
    started = time.perf_counter()
    result = ExportResult(format=extension(fmt, gzip_jsonl=gzip_jsonl))
    name_of = _names(file_name, source.name, result.format, rows_per_file is not None)
    make_writer(fmt, columns=source.columns, gzip_jsonl=gzip_jsonl)  # bad options fail before any I/O
    sink.check()
    handle = writer = None
    in_file = 0
    try:
        for batch in source.batches(client, batch_size):
            while batch:
                if handle is None:
                    handle = sink.open(name_of(result.files))
                    writer = make_writer(fmt, columns=source.columns, gzip_jsonl=gzip_jsonl)
                    writer.start(handle)
                room = len(batch) if rows_per_file is None else rows_per_file - in_file
                part, batch = batch[:room], batch[room:]
                writer.write(part)
                in_file += len(part)
                result.rows += len(part)
                if rows_per_file is not None and in_file >= rows_per_file:
                    _publish(writer, handle, result)
                    handle = writer = None
                    in_file = 0
            if on_batch is not None:
                on_batch(result.rows, result.bytes + (handle.bytes_written if handle else 0))
        if handle is None and result.files == 0:  # no rows: still one (empty) file, so readers find it
            handle = sink.open(name_of(0))
            writer = make_writer(fmt, columns=source.columns, gzip_jsonl=gzip_jsonl)
            writer.start(handle)
        if handle is not None:
            _publish(writer, handle, result)
            handle = None
    except BaseException:
        if handle is not None:
            handle.abort()
        raise
    result.seconds = time.perf_counter() - started
    return result


def _publish(writer, handle, result: ExportResult) -> None:
    writer.finish()
    handle.close()
    result.files += 1
    result.bytes += handle.bytes_written
    result.paths.append(handle.url)
