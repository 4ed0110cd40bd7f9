"""The SQLite file: schema, per-thread connections, write transactions, and the errors and key layout every part shares.

The file is opened in WAL mode with a busy timeout, so the Dagster webserver, daemon, run workers
and a served plane can share it. Each thread has its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

ORG_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "bt-dagster/local-org"))
ORG_NAME = "local"

encode_string = json.encoder.encode_basestring  # C-accelerated JSON string encoder
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
  pk INTEGER PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL UNIQUE, project_id TEXT,
  name TEXT NOT NULL, description TEXT, metadata TEXT, tags TEXT, created TEXT NOT NULL, deleted_at TEXT);
CREATE INDEX IF NOT EXISTS objects_by_name ON objects(kind, project_id, name);
CREATE TABLE IF NOT EXISTS rows (
  seq INTEGER PRIMARY KEY, obj INTEGER NOT NULL, id TEXT NOT NULL, xact_id INTEGER NOT NULL,
  head INTEGER NOT NULL, deleted INTEGER NOT NULL, created TEXT NOT NULL, root_span_id TEXT,
  span_id TEXT, is_root INTEGER NOT NULL, pagination_key TEXT NOT NULL, data TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS rows_head_id ON rows(obj, id) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_page ON rows(obj, pagination_key) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_created ON rows(obj, created) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_head_root ON rows(obj, root_span_id) WHERE head = 1;
CREATE INDEX IF NOT EXISTS rows_history ON rows(obj, id, xact_id);
CREATE INDEX IF NOT EXISTS rows_by_xact ON rows(obj, xact_id);
CREATE TABLE IF NOT EXISTS snapshots (
  id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT,
  xact_id TEXT NOT NULL, created TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS snapshots_by_dataset ON snapshots(dataset_id, created);
CREATE TABLE IF NOT EXISTS orphan_comments (obj INTEGER NOT NULL, target_id TEXT NOT NULL, entry TEXT NOT NULL);
"""


class StoreError(Exception):
    """Base class; `status` is the HTTP status the app answers with."""

    status = 400


class NotFound(StoreError):
    status = 404


class BadInput(StoreError):
    status = 400


def now_iso() -> str:
    """Now, as canonical `created` text."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_NON_DIGITS = str.maketrans("", "", "-T:.Z")


def pagination_key(created: str, xact: int, counter: int) -> str:
    """`_pagination_key`: `p` + the row's `created` digits + its first write's xact id and position.

    Time-ordered and unique. Leading with `created` makes a `created` range a key range, so a
    filtered time window pages through one index in key order, however wide the window is.
    """
    return f"p{created.translate(_NON_DIGITS)}{xact:019d}{counter:06d}"


def key_bound(created: str) -> str:
    """The `_pagination_key` prefix of rows created at `created` (canonical text)."""
    return "p" + created.translate(_NON_DIGITS)


class Database:
    """One SQLite file: a connection per thread, and `_write()` transactions."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            # Before WAL, and only effective on a new file: a purge can give freed pages back (store/purge.py).
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute("PRAGMA cache_size=-65536")
            # Reads share the OS page cache instead of warming a private cache per connection
            # (the app serves requests from a thread pool, one connection per thread).
            conn.execute("PRAGMA mmap_size=1073741824")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
