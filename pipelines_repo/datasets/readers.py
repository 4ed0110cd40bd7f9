"""Readers: a CSV, JSON, JSONL or Parquet file -> a stream of records, each with its place in the file.

    read_records(path, fmt="auto") -> Iterator[Record]

A record is one row of the file as a dict of column -> value; ``Record.cells_are_text`` is true for
CSV and Parquet, whose string cells the mapping parses (a JSON object or array in a cell is decoded). ``Record.where`` names the place for errors
(``line 12`` for CSV and JSONL: the physical line the record starts on; ``item 3`` for JSON arrays;
``row 5`` for Parquet). Every reader streams: JSON arrays are decoded item by item, Parquet batch by
batch, so memory stays flat for any file size. A malformed file raises :class:`DatasetFileError`
naming the file, the place and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..engine.jsonl import PARQUET_JSON_COLUMNS_KEY
from .errors import DatasetFileError

__all__ = ["FORMATS", "Record", "detect_format", "read_records"]

Format = Literal["csv", "json", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("csv", "json", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_CHUNK = 1 << 20

# Cells of LLM datasets hold whole prompts and transcripts; the csv module's 128 KiB default is too small.
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Record:
    where: str
    values: dict[str, Any]
    cells_are_text: bool = False
    header: tuple[str, ...] | None = None  # CSV: every column, including those empty in this row


def detect_format(path: str | os.PathLike[str], fmt: str = "auto") -> Format:
    """The file's format: ``fmt`` itself, or by extension for ``auto``."""
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DatasetFileError(str(path), f"unknown format {fmt!r}", f"use one of: auto, {', '.join(FORMATS)}")
        return fmt  # type: ignore[return-value]
    found = _EXTENSIONS.get(Path(path).suffix.lower())
    if found is None:
        raise DatasetFileError(
            str(path), f"cannot tell the format from the extension {Path(path).suffix or '(none)'!r}",
            f"name the file *.csv, *.json, *.jsonl or *.parquet, or pass --format {'|'.join(FORMATS)}",
        )
    return found  # type: ignore[return-value]


def read_records(path: str | os.PathLike[str], fmt: str = "auto") -> Iterator[Record]:
    """Stream the file's records (see the module doc)."""
    path = Path(path)
    kind = detect_format(path, fmt)
    if not path.is_file():
        raise DatasetFileError(str(path), "no such file", "check the path (it is relative to the current directory)")
    reader = {"csv": _read_csv, "json": _read_json, "jsonl": _read_jsonl, "parquet": _read_parquet}[kind]
    return reader(path)


def _open_text(path: Path):
    # utf-8-sig: spreadsheet programs save CSV with a byte-order mark that would stick to the first header.
    return open(path, encoding="utf-8-sig", newline="")


def _read_csv(path: Path) -> Iterator[Record]:
    with _open_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            _check_header(path, header)
            columns = tuple(header)
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not cells or cells == [""]:
                    continue
                if len(cells) != len(header):
                    raise DatasetFileError(
                        f"{path}: line {line}", f"the row has {len(cells)} cells but the header has {len(header)} columns",
                        "quote cells that contain commas or newlines with double quotes, and give every row one cell per column",
                    )
                yield Record(f"line {line}", {name: cell for name, cell in zip(header, cells) if cell != ""}, True, columns)
        except csv.Error as exc:
            raise DatasetFileError(
                f"{path}: line {reader.line_num}", f"malformed CSV ({exc})",
                'close every quoted cell with a double quote and write a quote inside a cell as two quotes ("")',
            ) from None
        except UnicodeDecodeError as exc:
            raise DatasetFileError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})", "save the file as UTF-8") from None


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        if not name:
            raise DatasetFileError(f"{path}: line 1", f"column {number} has no name", "give every column a header")
        if name in seen:
            raise DatasetFileError(f"{path}: line 1", f"column {name!r} appears twice in the header", "give every column a unique name")
        seen.add(name)


def _as_record(path: Path, where: str, value: Any) -> Record:
    if not isinstance(value, dict):
        raise DatasetFileError(
            f"{path}: {where}", f"a record must be a JSON object, got {type(value).__name__}",
            "write one object per record, e.g. {\"input\": ..., \"expected\": ...}",
        )
    return Record(where, value)


def _read_jsonl(path: Path) -> Iterator[Record]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DatasetFileError(
                    f"{path}: line {number}", f"invalid JSON ({exc})", "write one complete JSON object per line"
                ) from None
            yield _as_record(path, f"line {number}", value)


def _read_json(path: Path) -> Iterator[Record]:
    """A top-level array is decoded item by item; an object must hold the records in ``rows``."""
    with open(path, encoding="utf-8-sig") as handle:
        head = handle.read(_CHUNK)
        first = head.lstrip()[:1]
        if first == "[":
            yield from _stream_array(path, handle, head)
            return
        try:
            value = json.loads(head + handle.read())
        except json.JSONDecodeError as exc:
            raise DatasetFileError(f"{path}: line {exc.lineno}", f"invalid JSON ({exc.msg})", "fix the JSON syntax") from None
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        for number, item in enumerate(value["rows"], start=1):
            yield _as_record(path, f"item {number}", item)
        return
    raise DatasetFileError(
        str(path), "a JSON file must hold an array of records or an object with a 'rows' array",
        "wrap the records in [...] or {\"rows\": [...]}, or use JSONL (one object per line)",
    )


def _stream_array(path: Path, handle, buffer: str) -> Iterator[Record]:
    """Decode a top-level array item by item, reading the file a chunk at a time."""
    decoder = json.JSONDecoder()
    pos = buffer.index("[") + 1
    number = 0
    expect_item = True  # after '[' or ','
    while True:
        pos = _skip_space(buffer, pos)
        if pos >= len(buffer):
            more = handle.read(_CHUNK)
            if not more:
                raise DatasetFileError(f"{path}: item {number + 1}", "the JSON array is not closed", "end the file with ]")
            buffer, pos = more, 0
            continue
        char = buffer[pos]
        if char == "]" and (number == 0 or not expect_item):
            return
        if char == "," and not expect_item:
            pos, expect_item = pos + 1, True
            continue
        if not expect_item:
            raise DatasetFileError(f"{path}: after item {number}", "expected ',' or ']'", "separate array items with commas")
        while True:
            try:
                value, pos = decoder.raw_decode(buffer, pos)
                break
            except json.JSONDecodeError as exc:
                more = handle.read(_CHUNK)
                if not more:
                    raise DatasetFileError(
                        f"{path}: item {number + 1}", f"invalid JSON ({exc.msg})", "fix the JSON syntax of this item"
                    ) from None
                buffer, pos = buffer[pos:] + more, 0
        number += 1
        expect_item = False
        yield _as_record(path, f"item {number}", value)
        if pos > _CHUNK:  # drop what was consumed so the buffer stays about one chunk
            buffer, pos = buffer[pos:], 0


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError variants for a bad file
        raise DatasetFileError(str(path), f"not a readable Parquet file ({exc})", "write the file with a Parquet writer (e.g. pyarrow)") from None
    json_columns = _json_columns(parquet.schema_arrow.metadata)
    number = 0
    for batch in parquet.iter_batches(batch_size=1000):
        for values in batch.to_pylist():
            number += 1
            record = {key: value for key, value in values.items() if value is not None}
            if json_columns is None:
                # Parquet from elsewhere (e.g. Braintrust's fmt=parquet) keeps nested values as JSON
                # text in string columns: string cells parse as CSV cells do.
                yield Record(f"row {number}", record, True)
                continue
            for key in json_columns.intersection(record):
                try:
                    record[key] = json.loads(record[key])
                except (TypeError, ValueError):
                    raise DatasetFileError(
                        f"{path}: row {number}, column {key!r}", "the column is marked as JSON text but does not decode",
                        "re-export the file, or drop the bt_dagster.json_columns schema metadata",
                    ) from None
            yield Record(f"row {number}", record)


def _json_columns(metadata: dict | None) -> set[str] | None:
    """Columns a bt-dagster export wrote as JSON text (its schema says so), else None."""
    raw = (metadata or {}).get(PARQUET_JSON_COLUMNS_KEY)
    return set(json.loads(raw)) if raw else None
