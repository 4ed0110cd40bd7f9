"""File formats: rows (dicts) in batches -> bytes for a sink file, streamed.

    writer = make_writer("parquet", columns=SPAN_COLUMNS)
    writer.start(sink_file); writer.write(batch); ...; writer.finish()

- ``jsonl``: one compact JSON object per line (the engine's canonical encoder); ``gzip=True``
  compresses the stream (``.jsonl.gz``).
- ``json``: one streamed JSON array, one row per line.
- ``csv``: a header, then one line per row. Top-level fields whose values in the first batch are
  all objects are flattened one level into dotted columns (``input.question``); lists, deeper
  values and non-string scalars inside them are JSON text, strings stay as they are. The header is
  fixed by the first batch: the source's fixed columns first (``columns``), then the dotted ones in
  order of appearance. A key first seen in a later batch (or an object where the first batch had
  a scalar) spills into the last column, ``_extra``: a JSON object keyed by dotted path.
- ``parquet``: pyarrow ``ParquetWriter`` (zstd), row groups of several batches (up to
  :data:`ROW_GROUP_BYTES` of Arrow data or :data:`ROW_GROUP_ROWS` rows), and a fixed schema per
  source type (:data:`PARQUET_TYPES`): ``is_root`` is a bool, ``tags`` a list of strings,
  ``span_count`` an int64, every other column a string; nested values (input, output, expected,
  metadata, scores, metrics, comments, ...) are JSON text, exactly like the data plane's own
  ``fmt: parquet``. Fields outside the source's columns go to ``_extra`` (JSON object). Min/max
  statistics are written for the plain text and typed columns only, not for JSON text.

  Why row groups of several batches: the writer keeps every row group's metadata until the footer
  is written, and closing builds the footer from it (a few copies), so a row group per 1000-row
  batch made the peak at close grow with the row count (126 MiB at 500k spans, 145 MiB at 1M).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Sequence
from typing import Any, Protocol

from .errors import ExportOptionsError
from ..engine.jsonl import PARQUET_JSON_COLUMNS_KEY

__all__ = ["FORMATS", "PARQUET_TYPES", "Writer", "extension", "make_writer"]

FORMATS = ("jsonl", "json", "csv", "parquet")
EXTRA = "_extra"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=str)


class Output(Protocol):
    def write(self, data: bytes) -> None: ...


class Writer(Protocol):
    def start(self, out: Output) -> None: ...
    def write(self, rows: Sequence[dict[str, Any]]) -> None: ...
    def finish(self) -> None: ...


def extension(fmt: str, *, gzip_jsonl: bool = False) -> str:
    return "jsonl.gz" if fmt == "jsonl" and gzip_jsonl else fmt


class _Stream(io.RawIOBase):
    """A sink file as a writable binary stream (for gzip and pyarrow)."""

    def __init__(self, out: Output):
        self._out, self._pos = out, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        chunk = bytes(data)
        self._out.write(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos


class JsonlWriter:
    def __init__(self, *, gzip_output: bool = False):
        self.gzip_output = gzip_output

    def start(self, out: Output) -> None:
        self._raw = out
        self._gz = gzip.GzipFile(fileobj=_Stream(out), mode="wb", compresslevel=6, mtime=0) if self.gzip_output else None

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        data = "".join(_dumps(row) + "\n" for row in rows).encode("utf-8")
        (self._gz or self._raw).write(data)

    def finish(self) -> None:
        if self._gz is not None:
            self._gz.close()


class JsonWriter:
    def start(self, out: Output) -> None:
        self._out, self._first = out, True
        out.write(b"[")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        sep = "\n" if self._first else ",\n"
        self._first = False
        self._out.write((sep + ",\n".join(_dumps(row) for row in rows)).encode("utf-8"))

    def finish(self) -> None:
        self._out.write(b"\n]\n")


class CsvWriter:
    def __init__(self, columns: Sequence[str]):
        self.columns = list(columns)

    def start(self, out: Output) -> None:
        self._out, self._header, self._flat = out, None, set()

    def _make_header(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        names = list(self.columns) + [k for row in rows for k in row if k not in self.columns]
        names = list(dict.fromkeys(names))
        header: list[str] = []
        for name in names:
            values = [row[name] for row in rows if row.get(name) is not None]
            if values and all(isinstance(v, dict) for v in values):
                self._flat.add(name)
                header.extend(dict.fromkeys(f"{name}.{k}" for v in values for k in v))
            else:
                header.append(name)
        return header + [EXTRA]

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self._header is None:
            self._header = self._make_header(rows)
            self._index = {name: i for i, name in enumerate(self._header)}
            writer.writerow(self._header)
        for row in rows:
            writer.writerow(self._cells(row))
        self._out.write(buffer.getvalue().encode("utf-8"))

    def _cells(self, row: dict[str, Any]) -> list[str]:
        cells = [""] * len(self._header)
        extra: dict[str, Any] = {}
        for name, value in row.items():
            if value is None:
                continue
            if name in self._flat and isinstance(value, dict):
                for key, inner in value.items():
                    self._put(cells, extra, f"{name}.{key}", inner)
            elif name in self._flat:
                extra[name] = value
            else:
                self._put(cells, extra, name, value)
        if extra:
            cells[-1] = _dumps(extra)
        return cells

    def _put(self, cells: list[str], extra: dict[str, Any], column: str, value: Any) -> None:
        index = self._index.get(column)
        if index is None or column == EXTRA:
            extra[column] = value
        elif value is None:
            return
        else:
            cells[index] = value if isinstance(value, str) else _dumps(value)

    def finish(self) -> None:
        if self._header is None:  # no rows: a header of the fixed columns only
            self._out.write((",".join(self.columns + [EXTRA]) + "\n").encode("utf-8"))


# Typed Parquet columns; every other column of a source is a JSON-text string.
PARQUET_TYPES = {"is_root": "bool", "tags": "list<string>", "span_count": "int64"}


# Schema metadata key naming the columns that hold JSON text, so `datasets upload` decodes them
# exactly (a JSON string, number or bool comes back as itself, not as text).
JSON_COLUMNS_KEY = PARQUET_JSON_COLUMNS_KEY


def parquet_schema(columns: Sequence[str]):
    import pyarrow as pa

    types = {"bool": pa.bool_(), "list<string>": pa.list_(pa.string()), "int64": pa.int64()}
    names = [*columns, EXTRA]
    json_columns = [n for n in names if n not in _TEXT_COLUMNS and n not in PARQUET_TYPES]
    return pa.schema([(name, types.get(PARQUET_TYPES.get(name, ""), pa.string())) for name in names],
                     metadata={JSON_COLUMNS_KEY: json.dumps(json_columns).encode()})


# Columns stored as text as they are (strings); nested ones are JSON-encoded.
_TEXT_COLUMNS = {"id", "_xact_id", "created", "_pagination_key", "root_span_id", "span_id", "project_id",
                 "dataset_id", "experiment_id", "org_id", "log_id"}


# A Parquet row group gathers batches until it holds this much Arrow data or this many rows.
ROW_GROUP_BYTES = 8 * 1024 * 1024
ROW_GROUP_ROWS = 64 * 1024


class ParquetWriter:
    def __init__(self, columns: Sequence[str], *, compression: str = "zstd",
                 row_group_bytes: int = ROW_GROUP_BYTES, row_group_rows: int = ROW_GROUP_ROWS):
        self.columns = list(columns)
        self.compression = compression
        self.row_group_bytes, self.row_group_rows = row_group_bytes, row_group_rows

    def start(self, out: Output) -> None:
        import pyarrow.parquet as pq

        self.schema = parquet_schema(self.columns)
        stats = [n for n in self.schema.names if n in _TEXT_COLUMNS or n in PARQUET_TYPES]
        self._writer = pq.ParquetWriter(_Stream(out), self.schema, compression=self.compression,
                                        write_statistics=stats)
        self._pending: list[Any] = []
        self._pending_rows = self._pending_bytes = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        import pyarrow as pa

        if not rows:
            return
        known = set(self.columns)
        arrays = []
        for name in self.columns:
            values = [row.get(name) for row in rows]
            kind = PARQUET_TYPES.get(name)
            if kind == "bool":
                values = [None if v is None else bool(v) for v in values]
            elif kind == "list<string>":
                values = [v if isinstance(v, list) else (None if v is None else [str(v)]) for v in values]
            elif kind == "int64":
                pass
            elif name in _TEXT_COLUMNS:
                values = [v if v is None or isinstance(v, str) else _dumps(v) for v in values]
            else:
                values = [None if v is None else _dumps(v) for v in values]
            arrays.append(values)
        extras = [{k: v for k, v in row.items() if k not in known} for row in rows]
        arrays.append([_dumps(e) if e else None for e in extras])
        batch = pa.RecordBatch.from_arrays([pa.array(a, type=f.type) for a, f in zip(arrays, self.schema)],
                                           schema=self.schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self._pending_bytes += batch.nbytes
        if self._pending_bytes >= self.row_group_bytes or self._pending_rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
            self._writer.write_table(table, row_group_size=table.num_rows)

    def finish(self) -> None:
        self._flush()
        self._writer.close()


def make_writer(fmt: str, *, columns: Sequence[str], gzip_jsonl: bool = False) -> Writer:
    if fmt == "jsonl":
        return JsonlWriter(gzip_output=gzip_jsonl)
    if gzip_jsonl:
        raise ExportOptionsError("--gzip", f"only applies to jsonl, not {fmt}", "drop --gzip or use --format jsonl")
    if fmt == "json":
        return JsonWriter()
    if fmt == "csv":
        return CsvWriter(columns)
    if fmt == "parquet":
        return ParquetWriter(columns)
    raise ExportOptionsError("--format", f"unknown format {fmt!r}", f"use one of {', '.join(FORMATS)}")
