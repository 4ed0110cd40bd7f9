"""Benchmark: the local data plane beside raw SQLite doing the same work, in the same run.

    python benchmarks/local_plane.py [--spans 1000000] [--days 30] [--served]

Three figures, each as a ratio against raw SQLite (the floor):
  1. ingest: demo spans written through POST /logs3 (1000 rows a request) vs. `executemany` of the
     same rows (JSON-encoded, same indexed columns) into a plain table;
  2. one filtered day-window query (`created` in one day AND metadata.flagged = true), all pages,
     rows decoded, vs. the same SQL with json_extract on the raw table, rows decoded;
  3. paging every span through /btql (1000 a page, cursor) with rows decoded, vs. keyset paging
     over the raw table, each row decoded and given the same fields a Braintrust row carries
     (id, _xact_id, created, _pagination_key, root_span_id, span_id, is_root, org_id,
     project_id, log_id), so both sides deliver the same rows.
Span generation is excluded from the timings: each batch is generated first, then written both ways.
Reads advance both sides in lockstep, page by page, best of several passes: this machine's speed
drifts between minutes, and lockstep puts both sides under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines_repo.local.seed import generate_demo_logs  # noqa: E402
from pipelines_repo.local.query.times import canonical, parse_timestamp  # noqa: E402
from pipelines_repo.local.store import ORG_ID  # noqa: E402

RAW_SCHEMA = """
CREATE TABLE spans (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, created TEXT NOT NULL, root_span_id TEXT,
                    span_id TEXT, xact_id INTEGER, data TEXT NOT NULL);
CREATE UNIQUE INDEX spans_id ON spans(id);
CREATE INDEX spans_created ON spans(created);
CREATE INDEX spans_root ON spans(root_span_id);
"""
ROUTING = ("project_id", "log_id", "id", "created", "root_span_id", "span_id")


def open_raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(RAW_SCHEMA)
    return conn


def raw_insert(conn: sqlite3.Connection, batch: list[dict], xact: int) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO spans(id, created, root_span_id, span_id, xact_id, data) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (r["id"], canonical(parse_timestamp(r["created"])), r.get("root_span_id"), r.get("span_id"), xact,
             json.dumps({k: v for k, v in r.items() if k not in ROUTING}, separators=(",", ":")))
            for r in batch
        ],
    )
    conn.execute("COMMIT")


def make_client(db: Path, served: bool) -> tuple[httpx.Client, object]:
    if served:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from conftest import start_plane  # the same helper the tests use

        plane = start_plane(db)
        return plane.client(), plane
    from pipelines_repo.local.transport import InProcessTransport

    return httpx.Client(transport=InProcessTransport(db), base_url=InProcessTransport.BASE_URL, timeout=300), None


def plane_pages(http: httpx.Client, query: dict):
    """Page a /btql query to the end; yields each page's row count (rows decoded)."""
    cursor = None
    while True:
        body = {"query": {**query, "cursor": cursor, "limit": 1000}, "fmt": "json"}
        response = http.post("/btql", json=body)
        response.raise_for_status()
        page = response.json()  # decodes every row
        yield len(page["data"])
        cursor = page.get("cursor")
        if not cursor:
            return


def lockstep(runs: int, plane_work, raw_work) -> tuple[int, float, int, float]:
    """Time two pagers page by page, alternating, so both see the same machine conditions (this
    machine's speed drifts by a third between minutes); best of `runs` passes for each side."""
    best = [float("inf"), float("inf")]
    counts = [0, 0]
    for _ in range(runs):
        pagers = [plane_work(), raw_work()]
        spent, rows, done = [0.0, 0.0], [0, 0], [False, False]
        while not all(done):
            for side in (0, 1):
                if done[side]:
                    continue
                t0 = time.perf_counter()
                try:
                    rows[side] += next(pagers[side])
                except StopIteration:
                    done[side] = True
                spent[side] += time.perf_counter() - t0
        best = [min(best[i], spent[i]) for i in (0, 1)]
        counts = rows
    return counts[0], best[0], counts[1], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--served", action="store_true", help="go through uvicorn on a loopback port instead of in-process")
    parser.add_argument("--dir", type=Path, help="working directory (default: a temporary one)")
    args = parser.parse_args()

    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bt-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    plane_db, raw_db = workdir / "plane.db", workdir / "raw.db"
    for path in workdir.glob("*.db*"):
        path.unlink()
    raw = open_raw(raw_db)
    http, served = make_client(plane_db, args.served)
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        project_id = http.post("/v1/project", json={"name": "bench"}).json()["id"]
        per_day = max(1, args.spans // args.days)
        t_plane = t_raw = 0.0
        written, batch = 0, []
        rows = generate_demo_logs(project_id, days=args.days, spans_per_day=per_day, seed=1, end=end)
        spans_only = (r for r in rows if "comment" not in r)
        for row in spans_only:
            batch.append(row)
            if len(batch) == 1000:
                t0 = time.perf_counter()
                raw_insert(raw, batch, written)
                t1 = time.perf_counter()
                http.post("/logs3", json={"rows": batch, "api_version": 2}).raise_for_status()
                t2 = time.perf_counter()
                t_raw += t1 - t0
                t_plane += t2 - t1
                written += len(batch)
                batch = []
        if batch:
            raw_insert(raw, batch, written)
            http.post("/logs3", json={"rows": batch, "api_version": 2}).raise_for_status()
            written += len(batch)

        day = end - timedelta(days=args.days // 2)
        lo, hi = day.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        source = {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": project_id}], "shape": "spans"}
        window_query = {"select": [{"op": "star"}], "from": source,
                        "filter": {"btql": f"created >= '{lo}' AND created < '{hi}' AND metadata.flagged = true"}}
        def raw_window_query():
            yield len([
                json.loads(d) for (d,) in raw.execute(
                    "SELECT data FROM spans WHERE created >= ? AND created < ? AND json_type(data, '$.metadata.flagged') = 'true'"
                    " ORDER BY seq DESC", (lo, hi))
            ])

        def raw_page_all():
            last = None
            while True:
                if last is None:
                    page = raw.execute("SELECT seq, id, xact_id, created, root_span_id, span_id, data FROM spans ORDER BY seq DESC LIMIT 1000").fetchall()
                else:
                    page = raw.execute("SELECT seq, id, xact_id, created, root_span_id, span_id, data FROM spans WHERE seq < ? ORDER BY seq DESC LIMIT 1000", (last,)).fetchall()
                if not page:
                    return
                for seq, rid, xact, created, root, span, data in page:
                    row = json.loads(data)
                    row.update(
                        id=rid, _xact_id=str(xact), created=created, _pagination_key=f"p{seq:020d}", root_span_id=root,
                        span_id=span, is_root=not row.get("span_parents"), org_id=ORG_ID, project_id=project_id, log_id="g",
                    )
                yield len(page)
                last = page[-1][0]

        all_query = {"select": [{"op": "star"}], "from": source, "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}]}
        plane_window, t_plane_window, raw_window, t_raw_window = lockstep(
            5, lambda: plane_pages(http, window_query), raw_window_query
        )
        plane_all, t_plane_all, raw_all, t_raw_all = lockstep(2, lambda: plane_pages(http, all_query), raw_page_all)
    finally:
        http.close()
        if served is not None:
            from conftest import stop_plane

            stop_plane(served)

    assert plane_window == raw_window, (plane_window, raw_window)
    assert plane_all == raw_all == written, (plane_all, raw_all, written)
    size_mb = sum(p.stat().st_size for p in workdir.glob("plane.db*")) / 1e6
    print(f"local data plane benchmark: {written:,} spans over {args.days} days ({'served' if args.served else 'in-process'}), db {size_mb:,.0f} MB")
    print(f"{'work':<34}{'plane':>12}{'raw SQLite':>14}{'ratio':>9}")
    print(f"{'ingest via /logs3 (spans/s)':<34}{written / t_plane:>12,.0f}{written / t_raw:>14,.0f}{t_plane / t_raw:>8.2f}x")
    print(f"{'filtered day window (s, %d rows)' % plane_window:<34}{t_plane_window:>12.3f}{t_raw_window:>14.3f}{t_plane_window / t_raw_window:>8.2f}x")
    print(f"{'page all spans via /btql (s)':<34}{t_plane_all:>12.2f}{t_raw_all:>14.2f}{t_plane_all / t_raw_all:>8.2f}x")
    print(f"{'page all spans (spans/s)':<34}{plane_all / t_plane_all:>12,.0f}{raw_all / t_raw_all:>14,.0f}")
    if not args.dir:
        for path in workdir.glob("*"):
            path.unlink()
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
