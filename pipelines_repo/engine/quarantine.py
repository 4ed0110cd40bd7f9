"""Rows that fail the target dataset's enforced schemas: kept out of the push, written to ``quarantine.jsonl``.

    RowCheck = Callable[[row], list[error dict]]          # e.g. datasets.schema.target_row_check(target)
    screen_file(path, check, *, allow_deletes=False, out=None) -> Screened
    Quarantine(path).add(where, row, errors) ; .close()
    enforce_max_invalid(screens, max_invalid)             # raises QuarantineLimitError above the limit

The check is injected (the engine does not know about schemas: ``datasets.schema`` builds it from
the dataset's ``metadata.__schemas``). ``quarantine.jsonl`` sits beside the pushed file (a
partition's ``transformed.jsonl``, the CLI's artifact directory) and holds one line per rejected
row: ``{"where", "id", "errors": [{"field", "path", "keyword", "message"}], "row"}``. A screen
that finds nothing removes a stale quarantine file, so the file always describes the last screen.
Above ``max_invalid`` rejected rows nothing is pushed; at or below it, the valid rows are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PipelineError
from .jsonl import JsonlError, JsonlWriter, read_jsonl_numbered
from .rows import RowPreparer, RowValidationError

__all__ = [
    "QUARANTINE_FILE",
    "Quarantine",
    "QuarantineLimitError",
    "RowCheck",
    "Screened",
    "enforce_max_invalid",
    "quarantine_path_for",
    "screen_file",
]

QUARANTINE_FILE = "quarantine.jsonl"
RowCheck = Callable[[Mapping[str, Any]], list[dict[str, Any]]]


class QuarantineLimitError(PipelineError, ValueError):
    """More rows failed the target's enforced schemas than ``max_invalid_rows`` allows; nothing was pushed."""

    def __init__(self, invalid: int, max_invalid: int, paths: Sequence[Path]):
        self.invalid, self.max_invalid, self.paths = invalid, max_invalid, list(paths)
        where = ", ".join(os.fspath(p) for p in paths)
        super().__init__(
            f"{invalid} row(s) do not conform to the target dataset's enforced schemas (max_invalid_rows: "
            f"{max_invalid}), so nothing was pushed; the rows and every error are in {where}.",
            fix="Fix: correct the transform, or the schema (`bt-dagster datasets schema set`), "
            "or raise the pipeline's max_invalid_rows to push the valid rows.",
        )


def quarantine_path_for(input_path: str | os.PathLike[str]) -> Path:
    """``quarantine.jsonl`` beside ``input_path``."""
    return Path(input_path).with_name(QUARANTINE_FILE)


class Quarantine:
    """Writes rejected rows to ``path`` (created on the first one; a clean close with none removes it)."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._writer = JsonlWriter(path, atomic=True)

    def add(self, where: str, row: Mapping[str, Any], errors: list[dict[str, Any]]) -> None:
        self.count += 1
        self._writer.write({"where": where, "id": row.get("id"), "errors": errors, "row": dict(row)})

    def close(self) -> None:
        if self.count:
            self._writer.close()
            return
        self._writer.abort()
        self.path.unlink(missing_ok=True)


@dataclass
class Screened:
    """One screened file: the item numbers (1-based) of its rejected rows and where they went."""

    path: Path
    quarantine_path: Path
    items: set[int] = field(default_factory=set)

    @property
    def count(self) -> int:
        return len(self.items)


def screen_file(
    path: str | os.PathLike[str],
    check: RowCheck,
    *,
    allow_deletes: bool = False,
    out: str | os.PathLike[str] | None = None,
    place: str | None = None,
) -> Screened:
    """Check every row of a push input (ids assigned as the push assigns them); rows the push
    itself rejects are left to its validation (and the ``rows_valid`` check). Quarantined rows
    are placed as ``<file> line N``, or ``<place> N`` for a scratch file the user never sees."""
    path = Path(path)
    result = Screened(path, Path(out) if out is not None else quarantine_path_for(path))
    quarantine = Quarantine(result.quarantine_path)
    preparer = RowPreparer(allow_deletes=allow_deletes)
    try:
        for item, (line, value) in enumerate(read_jsonl_numbered(path), start=1):
            try:
                row = preparer.prepare(value, item - 1)
            except RowValidationError:
                continue
            if row.get("_object_delete"):
                continue
            errors = check(row)
            if errors:
                result.items.add(item)
                quarantine.add(f"{place} {item}" if place else f"{os.fspath(path)} line {line}", row, errors)
    except JsonlError:
        pass  # an unreadable file fails the push's own validation
    finally:
        quarantine.close()
    return result


def enforce_max_invalid(screens: Sequence[Screened], max_invalid: int) -> None:
    """Raise :class:`QuarantineLimitError` when the screens rejected more than ``max_invalid`` rows."""
    invalid = sum(s.count for s in screens)
    if invalid > max_invalid:
        raise QuarantineLimitError(invalid, max_invalid, [s.quarantine_path for s in screens if s.count])
