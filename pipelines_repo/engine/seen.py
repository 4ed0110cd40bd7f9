"""A set of ids whose memory stays bounded however many ids it holds.

    seen = SpillingSet(memory_limit=100_000)
    seen.update(ids); "x" in seen

Trace-scope pulls must remember every root span id they hydrated (a trace's spans can come back on
any later discovery page), so the set grows with the window. Up to ``memory_limit`` ids it is a
plain set of 16-byte digests; past that the digests move to a temporary SQLite file (primary key
lookups), so memory stays flat for any window. Collisions of 128-bit digests are far below one in
10^20 at 10^9 ids.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SpillingSet"]


def _digest(value: str) -> bytes:
    return hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()


class SpillingSet:
    def __init__(self, memory_limit: int = 100_000):
        self.memory_limit = memory_limit
        self._memory: set[bytes] = set()
        self._dir: tempfile.TemporaryDirectory | None = None
        self._db: sqlite3.Connection | None = None
        self.count = 0

    def __contains__(self, value: str) -> bool:
        return self._has(_digest(value))

    def _has(self, digest: bytes) -> bool:
        if digest in self._memory:
            return True
        return self._db is not None and self._db.execute("SELECT 1 FROM seen WHERE d = ?", (digest,)).fetchone() is not None

    def update(self, values: Iterable[str]) -> None:
        for value in values:
            digest = _digest(value)
            if self._has(digest):
                continue
            self._memory.add(digest)
            self.count += 1
        if len(self._memory) > self.memory_limit:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            self._dir = tempfile.TemporaryDirectory(prefix="bt-seen-")
            self._db = sqlite3.connect(Path(self._dir.name) / "seen.db", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("CREATE TABLE seen (d BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((d,) for d in self._memory))
        self._db.execute("COMMIT")
        self._memory.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __del__(self) -> None:  # pragma: no cover - the temp folder goes with the set
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
