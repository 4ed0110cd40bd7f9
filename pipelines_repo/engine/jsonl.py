"""JSON and JSONL files: the engine's two JSON encoders, atomic writes, streaming JSONL, sha256.

Encoders (the only two in the engine; ``client/http.py`` has its own for request bodies):

- :func:`canonical_json`: compact, keys sorted at every level, UTF-8 unescaped, NaN/inf rejected
  (bt's ``serde_json::Value`` output). Every JSONL line is this, and so is the row JSON that push
  batches by size and hashes for deterministic ids.
- :func:`compact_json`: the same without sorting, in insertion order (serde's struct output); what
  spec hashes and checkpoint keys are computed over.

JSONL: lines are :func:`canonical_json`, flushed per line (:class:`JsonlWriter`); the readers
stream and skip blank lines, and a bad line raises :class:`JsonlError` naming the file and line.
Small JSON files (specs, manifests, checkpoints) are replaced atomically
(:func:`write_json_atomic`, :func:`write_text_atomic`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import PipelineError

# Parquet schema metadata naming the string columns that hold JSON text (our exports write it,
# `datasets upload` reads it back), so nested values round-trip exactly.
PARQUET_JSON_COLUMNS_KEY = b"bt_dagster.json_columns"

__all__ = [
    "PARQUET_JSON_COLUMNS_KEY",
    "JsonlError",
    "JsonlWriter",
    "canonical_json",
    "compact_json",
    "read_json",
    "read_jsonl",
    "read_jsonl_numbered",
    "sha256_file",
    "write_json_atomic",
    "write_jsonl",
    "write_text_atomic",
]


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys (bt's serde_json ``Value`` output); NaN/inf rejected."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def compact_json(value: Any) -> str:
    """Compact JSON in insertion order (serde's struct output), UTF-8 unescaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)




def write_json_atomic(path: str | os.PathLike[str], value: Any) -> Path:
    """Pretty JSON (2-space indent, like serde's ``to_vec_pretty``) via a temp file + rename."""
    return write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` with ``text`` through a temp file + ``os.replace``, so a reader (or a run
    that resumes after a crash or SIGKILL) never sees half a file.

    No fsync: the JSONL outputs these specs, manifests and checkpoints describe are not forced to
    disk either, so syncing only the small files would buy nothing after a power loss, and a
    365-partition backfill writes thousands of them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class JsonlError(PipelineError, ValueError):
    """A JSONL line is not valid JSON (names the file and the line; bt's wording)."""

    def __init__(self, path: str | os.PathLike[str], line: int, message: str):
        self.line = line
        super().__init__(
            message, path=path, message=f"failed to parse JSON on line {line} from {os.fspath(path)}: {message}"
        )


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Stream values from a JSONL file, skipping blank lines."""
    for _, value in read_jsonl_numbered(path):
        yield value


def read_jsonl_numbered(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(physical line number, value)`` for each non-blank line (to point at a bad row)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                raise JsonlError(path, number, exc.msg) from None


class JsonlWriter:
    """Write values as JSONL, flushed per line. ``atomic=True`` writes ``<path>.partial`` and
    renames it over ``path`` only on a clean :meth:`close` (an exception in a ``with`` block
    aborts and removes the partial file); otherwise ``path`` is truncated and written in place (bt)."""

    def __init__(self, path: str | os.PathLike[str], *, atomic: bool = False):
        self.path = Path(path)
        self.atomic = atomic
        self.count = 0
        self.bytes_written = 0
        self._handle: IO[str] | None = None
        self._target = self.path.with_name(self.path.name + ".partial") if atomic else self.path
        self._closed = False

    def _open(self) -> IO[str]:
        if self._handle is None:
            if self._closed:
                raise ValueError(f"JSONL writer for {self.path} is closed")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self._target, "w", encoding="utf-8")  # noqa: SIM115
        return self._handle

    def open(self) -> JsonlWriter:
        """Create/truncate the file now (so an empty output still exists)."""
        self._open()
        return self

    def write(self, value: Any) -> int:
        """Write one value; returns the bytes written (line + newline)."""
        line = canonical_json(value) + "\n"
        handle = self._open()
        handle.write(line)
        handle.flush()
        size = len(line.encode("utf-8"))
        self.count += 1
        self.bytes_written += size
        return size

    def write_all(self, values: Iterable[Any]) -> int:
        for value in values:
            self.write(value)
        return self.count

    def close(self) -> None:
        if self._closed:
            return
        self._open()
        assert self._handle is not None
        self._handle.close()
        self._closed = True
        if self.atomic:
            os.replace(self._target, self.path)

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._closed = True
        if self.atomic:
            try:
                os.unlink(self._target)
            except FileNotFoundError:
                pass

    def __enter__(self) -> JsonlWriter:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()


def write_jsonl(path: str | os.PathLike[str], values: Iterable[Any], *, atomic: bool = False) -> int:
    """Write all values; returns the number of lines."""
    with JsonlWriter(path, atomic=atomic) as writer:
        return writer.write_all(values)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (keys checkpoints and sidecars to content)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
