"""Dagster's SQLite instance storage, with engines and connections kept open between events.

Dagster's own SQLite event log builds a new SQLAlchemy engine for every event it stores: every
statement is compiled afresh (the compiled cache lives on the engine) and every connection is
closed again, which in WAL mode checkpoints the log into the database file. A backfill over 365
daily partitions of a three-asset pipeline stores about 2,200 events, and that bookkeeping was most
of its wall time (benchmarks/dagster_backfill.py measures it). This storage is Dagster's, file for
file (the default layout under $DAGSTER_HOME: ``history/runs.db``, ``history/runs/<run>.db``,
``schedules/``; same schema, same migrations), with three changes:

- one engine per database file, each holding one pooled connection (an LRU of run shards, so a
  long-lived webserver does not keep every run's file open);
- ``PRAGMA synchronous=NORMAL`` on those connections, SQLite's recommended setting for WAL: a
  crash of the process loses nothing, a power cut may lose the last events (Dagster's SQLite
  storage is for development and single-machine use; production instances use Postgres);
- after a write to a run's shard, the shard file's mtime is touched, because the webserver's live
  run view watches that file and pooled connections no longer rewrite it on every close.

Configured in ``dagster_home/dagster.yaml``::

    storage:
      custom:
        module: pipelines_repo.orchestration.sqlite_storage
        class: PooledSqliteStorage
        config:
          instance_dir: {env: DAGSTER_HOME}

``instance_dir`` comes from DAGSTER_HOME, so code that opens an instance with
``DagsterInstance.from_config(path)`` should set DAGSTER_HOME to the same path.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dagster._config import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Run shards whose engines stay open in one process; the index shard is always open.
OPEN_RUN_SHARDS = 8


def pooled_engine(conn_string: str) -> Engine:
    """An engine whose single pooled connection stays open, WAL-friendly and patient with locks."""
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,
        # Concurrent callers (the webserver's request threads) get extra connections, closed on
        # return, as with Dagster's NullPool: never a wait for the pooled one.
        max_overflow=-1,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    return engine


class _EngineCache:
    """Engines by shard name, the least recently used run shards disposed beyond a bound."""

    def __init__(self, make: Callable[[str], Engine], keep_open: int) -> None:
        self._make = make
        self._keep_open = keep_open
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, shard: str) -> Engine:
        with self._lock:
            engine = self._engines.get(shard)
            if engine is None:
                engine = self._engines[shard] = self._make(shard)
            self._engines.move_to_end(shard)
            run_shards = [name for name in self._engines if name != INDEX_SHARD_NAME]
            for name in run_shards[: max(0, len(run_shards) - self._keep_open)]:
                self._engines.pop(name).dispose()
            return engine

    def dispose_all(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run-sharded SQLite event log over kept-open engines (see the module doc)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engine_cache = _EngineCache(
            lambda shard: pooled_engine(self.conn_string_for_shard(shard)), OPEN_RUN_SHARDS
        )
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine_cache.get(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes_before = _total_changes(conn)
                with conn.begin():
                    yield conn
                wrote = _total_changes(conn) != changes_before
            if wrote and shard != INDEX_SHARD_NAME:
                _touch(self.path_for_shard(shard))

    def wipe(self) -> None:
        # Dagster's wipe unlinks run shard files; open connections must not outlive them.
        self._engine_cache.dispose_all()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engine_cache.dispose_all()


class PooledSqliteRunStorage(SqliteRunStorage):
    """Dagster's SQLite run storage over one kept-open engine."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engine = pooled_engine(conn_string)
        super().__init__(conn_string, inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engine.dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite layout (``history/``, ``schedules/`` under the instance), pooled."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        # DagsterStorage's init, not DagsterSqliteStorage's: that one would open stock storages too.
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"instance_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteStorage:
        base_dir = os.path.abspath(config_value["instance_dir"])  # Dagster's default SQLite layout
        os.makedirs(base_dir, exist_ok=True)
        return cls(base_dir, inst_data=inst_data)


def _total_changes(conn: Connection) -> int:
    return conn.connection.dbapi_connection.total_changes  # type: ignore[union-attr]


def _touch(path: str) -> None:
    try:
        os.utime(path)
    except FileNotFoundError:  # wiped meanwhile
        pass
