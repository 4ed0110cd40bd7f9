"""Counts read straight from a local plane's SQLite file: the benchmarks' ground truth."""

from __future__ import annotations

import sqlite3
from pathlib import Path

FLAGGED = """json_type(data, '$."metadata"."flagged"') = 'true'"""


def count_window(db: Path, project_id: str, lo: str, hi: str) -> tuple[int, int]:
    """(spans, flagged spans) in [lo, hi): head, not deleted, of the project's logs."""
    conn = sqlite3.connect(db)
    try:
        (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'project' AND id = ?", (project_id,)).fetchone()
        where = "obj = ? AND head = 1 AND deleted = 0 AND created >= ? AND created < ?"
        (spans,) = conn.execute(f"SELECT count(*) FROM rows WHERE {where}", (obj, lo, hi)).fetchone()
        (flagged,) = conn.execute(f"SELECT count(*) FROM rows WHERE {where} AND {FLAGGED}", (obj, lo, hi)).fetchone()
        return spans, flagged
    finally:
        conn.close()
