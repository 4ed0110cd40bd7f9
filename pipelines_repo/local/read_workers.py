"""A served plane's `/btql` reads, answered in worker processes beside the server's own.

SQLite releases Python's GIL while it runs a query, but one process still serializes much of
the work: its allocator takes a process-wide lock, so a scan of span JSON and a batch of writes
in two threads of one process run no faster than one after the other (measured on 1M spans: a
window's 37 pages took 1.44 s alone and 2.34 s beside 36 write batches; in two processes, 1.54 s
with the writes done in 0.80 s). So a served plane hands each `/btql` query to a small pool of
reader processes, each with its own connection to the same file, while writes, routing, auth,
faults, counters and rate limits stay in the server process.

Reads see every committed write: the file is in WAL mode and each query starts its own read
transaction, and a write is committed before its response is sent. A query's errors come back as
the store's own exceptions (the same HTTP statuses); a reader that dies is replaced, and the
query that found it dead is answered in the server's own thread.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from .store import LocalStore, QueryPage

__all__ = ["ReadWorkers"]

_store: LocalStore | None = None  # the reader process's own store


def _open(path: str, server: int) -> None:
    global _store
    threading.Thread(target=_exit_with_server, args=(server,), name="bt-reader-watch", daemon=True).start()
    _store = LocalStore(path)


def _exit_with_server(server: int) -> None:
    """A reader outlives no server: uvicorn ends its process by re-raising the stop signal (and a
    server may be killed), so no shutdown code of ours is sure to run; the reader watches instead.
    The server's pid comes from the server, so a reader that starts after its server died (a
    plane stopped while its readers were still spawning) exits at once."""
    while os.getppid() == server:
        time.sleep(0.5)
    os._exit(0)


def _ready() -> bool:
    return _store is not None


def _query(parsed: Any, version: int | None, audit_log: bool) -> QueryPage:
    assert _store is not None
    return _store.query(parsed, version=version, audit_log=audit_log)


class ReadWorkers:
    """``workers`` reader processes over ``db_path`` (started now, in the background)."""

    def __init__(self, db_path: Path, workers: int):
        if workers < 1:
            raise ValueError("read workers must be >= 1")
        self.db_path = Path(db_path)
        self.workers = workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads (the event loop's, its thread pool's)
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_open, initargs=(str(self.db_path), os.getpid()))
        for _ in range(self.workers):
            pool.submit(_ready)  # start the readers while the server starts, not at the first query
        return pool

    async def query(self, store: LocalStore, parsed: Any, *, version: int | None, audit_log: bool) -> QueryPage:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, _query, parsed, version, audit_log)
        except BrokenProcessPool:
            self._pool = self._start()
            return await loop.run_in_executor(None, lambda: store.query(parsed, version=version, audit_log=audit_log))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
