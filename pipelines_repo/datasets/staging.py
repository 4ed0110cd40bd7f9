"""A disk-backed staging area for one upload: mapped rows, deduplicated by id, before anything is written.

The whole file is parsed, mapped and validated into a temporary SQLite file first, so a bad file
writes nothing, memory stays flat for any file size, and the rows that share an id collapse to the
last one (Braintrust's upload rule) without keeping every id in memory.

    with StagedRows(directory) as staged:
        staged.add(row, where)                 # raises DuplicateIdError under on_duplicate="error"
        staged.count, staged.duplicates
        for batch in staged.batches(1000): ... # [(id, row, digest)], in the order rows first appeared
        staged.contains(ids) -> set[str]
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from ..engine.jsonl import canonical_json
from .errors import DatasetError
from .ids import content_digest

__all__ = ["DuplicateIdError", "StagedRows"]

OnDuplicate = Literal["last", "error"]


class DuplicateIdError(DatasetError):
    """Two rows of one upload share an id and ``--on-duplicate error`` was given."""


class StagedRows:
    def __init__(self, directory: str | Path | None = None, *, on_duplicate: OnDuplicate = "last"):
        self._dir = tempfile.TemporaryDirectory(prefix="bt-upload-", dir=directory)
        self.path = Path(self._dir.name) / "staged.db"
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        # A scratch file: losing it to a crash loses nothing (the upload starts again from the input).
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        # The id index of a million-row file outgrows SQLite's default 2 MiB page cache, and each
        # insert then re-reads index pages from the file: a fixed 64 MiB keeps it in memory.
        self._conn.execute("PRAGMA cache_size=-65536")
        self._conn.execute(
            # seq is the rowid (pages in first-appearance order by key, not by a sort of the table);
            # id is unique so a later row with the same id replaces the content in place.
            "CREATE TABLE staged (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, digest BLOB NOT NULL, "
            "row TEXT NOT NULL, place TEXT NOT NULL)"
        )
        self._conn.execute("BEGIN")
        self.on_duplicate = on_duplicate
        self.added = 0  # rows given to add()
        self._seq = 0

    def __enter__(self) -> StagedRows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._dir.cleanup()

    def add(self, row: dict[str, Any], where: str) -> None:
        """Stage one prepared row (it has an id). The last row with an id replaces earlier ones."""
        self._seq += 1
        self.added += 1
        text = canonical_json(row)
        digest = content_digest(row)
        if self.on_duplicate == "error":
            try:
                self._conn.execute("INSERT INTO staged VALUES (?, ?, ?, ?, ?)", (self._seq, row["id"], digest, text, where))
            except sqlite3.IntegrityError:
                (first,) = self._conn.execute("SELECT place FROM staged WHERE id = ?", (row["id"],)).fetchone()
                raise DuplicateIdError(
                    where, f"id {row['id']!r} was already used at {first}",
                    "give every row a unique id, or use --on-duplicate last to keep the last occurrence",
                ) from None
            return
        # Last wins for the content; the row keeps the position where its id first appeared.
        self._conn.execute(
            "INSERT INTO staged VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "digest = excluded.digest, row = excluded.row, place = excluded.place",
            (self._seq, row["id"], digest, text, where),
        )

    def finish(self) -> None:
        """End staging (commit): call once every row was added."""
        self._conn.execute("COMMIT")

    @property
    def count(self) -> int:
        """Distinct ids staged."""
        return self._conn.execute("SELECT count(*) FROM staged").fetchone()[0]

    @property
    def duplicates(self) -> int:
        """Rows replaced by a later row with the same id."""
        return self.added - self.count

    def batches(self, size: int) -> Iterator[list[tuple[str, dict[str, Any], bytes]]]:
        """``(id, row, digest)`` in first-appearance order, ``size`` at a time (keyset paging)."""
        last = 0
        while True:
            page = self._conn.execute(
                "SELECT seq, id, row, digest FROM staged WHERE seq > ? ORDER BY seq LIMIT ?", (last, size)
            ).fetchall()
            if not page:
                return
            last = page[-1][0]
            yield [(row_id, json.loads(text), digest) for _, row_id, text, digest in page]

    def sample(self, n: int) -> list[dict[str, Any]]:
        return [json.loads(text) for (text,) in self._conn.execute("SELECT row FROM staged ORDER BY seq LIMIT ?", (n,))]

    def contains(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are staged."""
        ids = list(ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(r for (r,) in self._conn.execute(f"SELECT id FROM staged WHERE id IN ({marks})", chunk))
        return found
