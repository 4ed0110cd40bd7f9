"""What the benchmarks share about a local plane's SQLite file: a cached seeded copy, and counts
read straight from it (their ground truth)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

FLAGGED = """json_type(data, '$."metadata"."flagged"') = 'true'"""
# trace_llm_calls' source filter `scores.correctness >= 0.7`, read straight from the file
CORRECT = """json_type(data, '$."scores"."correctness"') IN ('integer', 'real') AND json_extract(data, '$."scores"."correctness"') >= 0.7"""


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


# trace_llm_calls keeps a trace only when it has an LLM span
HAS_LLM_SPAN = """json_extract(data, '$."span_attributes"."type"') = 'llm'"""


def count_matching(db: Path, project_id: str, lo: str, hi: str, condition: str, scope: str) -> int:
    """Head spans in [lo, hi) matching the SQL `condition` (span scope), or their distinct traces
    that have an LLM span (trace scope): what a pipeline over that window must write."""
    conn = sqlite3.connect(db)
    try:
        (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'project' AND id = ?", (project_id,)).fetchone()
        head = "obj = ? AND head = 1 AND deleted = 0"
        where = f"{head} AND created >= ? AND created < ? AND {condition}"
        if scope == "trace":
            sql = (f"SELECT count(DISTINCT root_span_id) FROM rows WHERE {where} AND root_span_id IN"
                   f" (SELECT root_span_id FROM rows WHERE {head} AND {HAS_LLM_SPAN})")
            params: tuple = (obj, lo, hi, obj)
        else:
            sql, params = f"SELECT count(*) FROM rows WHERE {where}", (obj, lo, hi)
        (count,) = conn.execute(sql, params).fetchone()
        return count
    finally:
        conn.close()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seeded_db(workdir: Path, *, project: str, spans_per_day: int, days: int, seed: int, end: datetime,
              match_end: bool = True) -> tuple[Path, dict[str, Any]]:
    """`workdir/seed.db`: `days` days of demo logs ending at `end`, seeded once through the
    in-process plane and reused while spans/day, days, seed (and the end day, if `match_end`)
    match; `seed.json` beside it records what it holds."""
    import httpx

    from pipelines_repo.local.seed import seed_demo_logs
    from pipelines_repo.local.transport import InProcessTransport

    db, info_path = workdir / "seed.db", workdir / "seed.json"
    want = {"project": project, "spans_per_day": spans_per_day, "days": days, "seed": seed}
    if match_end:
        want["end"] = _iso(end)
    if db.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if {k: info.get(k) for k in want} == want and count_window(db, info["project_id"], "", "~")[0] == info["spans"]:
            print(f"reusing {db} ({info['spans']:,} spans)", file=sys.stderr)
            return db, info
    for path in [*workdir.glob("seed.db*"), *workdir.glob("seed.tmp.db*")]:
        path.unlink()
    info_path.unlink(missing_ok=True)
    print(f"seeding {spans_per_day * days:,} spans over {days} days into {db} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tmp = workdir / "seed.tmp.db"
    transport = InProcessTransport(tmp)
    with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL, timeout=600) as http:
        result = seed_demo_logs(http, project, days=days, spans_per_day=spans_per_day, seed=seed, end=end)
    transport.close()
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to copy
    conn.close()
    for suffix in ("", "-wal"):
        if Path(f"{tmp}{suffix}").exists():
            os.replace(f"{tmp}{suffix}", f"{db}{suffix}")
    Path(f"{tmp}-shm").unlink(missing_ok=True)
    info = {**want, "end": _iso(end), "start": _iso(end - timedelta(days=days)), "project_id": result.project_id,
            "spans": result.spans, "traces": result.traces, "comments": result.comments}
    info_path.write_text(json.dumps(info, indent=1))
    print(f"seeded {result.spans:,} spans in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return db, info
