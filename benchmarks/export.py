"""Export benchmark: all spans of a seeded local plane to Parquet, on SeaweedFS (S3) and to a local file.

    python benchmarks/export.py [--spans 1000000] [--days 10] [--workdir DIR]

Each contender runs in its own subprocess (peak RSS from ``os.wait4``):

- ``export s3``: ``bt-dagster export logs --format parquet --out s3://bucket/bench/`` against a
  ``weed mini`` server started here on loopback, reading from a served local plane (``bt-dagster
  local serve`` on the seeded file, its own process, so the export's RSS is the export's: the
  plane memory-maps its SQLite file, which would otherwise count);
- ``export local``: the same to a local folder;
- ``floor``: pyarrow writing the same rows (same columns, JSON-text encoding, zstd, row groups of
  1000) read straight from the plane's SQLite file, no HTTP, no client;
- ``export local N/2``: the local export of the first half of the window, for RSS flatness.

Peak RSS is only meaningful when the seed is reused: a child's ``ru_maxrss`` counts the parent's
memory at fork, and a first run seeds in this process (run it twice).

Goal: each export within 1.5x of the floor's seconds; peak RSS at N at most 1.1x that at N/2.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks"), str(REPO / "tests")]

from plane_counts import seeded_db  # noqa: E402

os.environ.setdefault("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "1")

PROJECT = "Export Bench"
END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def spawn(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of one command, waited for with os.wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(["nice", "-n", "5", *cmd], env=env, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0), err.seek(0)
        text, error = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} failed ({proc.returncode}): {error[-2000:]}")
    return seconds, usage.ru_maxrss // 1024, text


def floor(db: str, project_id: str, out: str) -> None:
    """pyarrow writing the spans straight from SQLite, in the export's Parquet schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines_repo.export.sources import SPAN_COLUMNS
    from pipelines_repo.export.writers import parquet_schema

    schema = parquet_schema(SPAN_COLUMNS)
    dumps = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)  # noqa: E731
    conn = sqlite3.connect(db)
    (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'project' AND id = ?", (project_id,)).fetchone()
    cursor = conn.execute(
        "SELECT id, xact_id, created, pagination_key, root_span_id, span_id, is_root, data FROM rows"
        " WHERE obj = ? AND head = 1 AND deleted = 0 ORDER BY pagination_key", (obj,))
    system = {"id": 0, "_xact_id": 1, "created": 2, "_pagination_key": 3, "root_span_id": 4, "span_id": 5}
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        while recs := cursor.fetchmany(1000):
            datas = [json.loads(r[7]) for r in recs]
            columns = []
            for name in SPAN_COLUMNS:
                if name in system:
                    i = system[name]
                    columns.append([str(r[i]) if r[i] is not None else None for r in recs])
                elif name == "project_id":
                    columns.append([project_id] * len(recs))
                elif name == "is_root":
                    columns.append([bool(r[6]) for r in recs])
                elif name == "tags":
                    columns.append([d.get("tags") for d in datas])
                else:
                    columns.append([None if d.get(name) is None else dumps(d[name]) for d in datas])
            known = set(SPAN_COLUMNS)
            columns.append([dumps(e) if (e := {k: v for k, v in d.items() if k not in known}) else None for d in datas])
            writer.write_batch(pa.RecordBatch.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bt-dagster-bench-export")
    parser.add_argument("--floor", nargs=3, help=argparse.SUPPRESS)  # the floor's own subprocess
    args = parser.parse_args()
    if args.floor:
        floor(*args.floor)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    db, info = seeded_db(args.workdir, project=PROJECT, spans_per_day=max(1, args.spans // args.days), days=args.days,
                         seed=1, end=END)
    from conftest import start_plane, stop_plane
    from s3_server import start_s3_server, stop_s3_server

    server = start_s3_server()
    plane = start_plane(db, api_key="bench-key")
    try:
        run(args, db, info, server, plane)
    finally:
        plane.process.terminate()
        plane.process.wait(timeout=30)
        stop_s3_server(server)


def run(args: argparse.Namespace, db: Path, info: dict, server, plane) -> None:
    bucket = server.make_bucket("bench")
    out = args.workdir / "out"
    out.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "AWS_"))}
    env.update({"BRAINTRUST_API_KEY": plane.api_key, "BRAINTRUST_APP_URL": plane.url, "PYTHONPATH": str(REPO), **server.env()})
    cli = [sys.executable, "-m", "pipelines_repo.cli.main", "export", "logs", "--project", PROJECT, "--format", "parquet", "--json"]
    mid = datetime.fromisoformat(info["start"].replace("Z", "+00:00")) + (END - datetime.fromisoformat(info["start"].replace("Z", "+00:00"))) / 2
    figures = {}
    figures["floor"] = spawn([sys.executable, __file__, "--floor", str(db), info["project_id"], str(out / "floor.parquet")], env)
    figures["export local"] = spawn([*cli, "--out", str(out / "spans.parquet")], env)
    figures["export s3"] = spawn([*cli, "--out", f"s3://{bucket}/bench/spans.parquet"], env)
    figures["export local N/2"] = spawn([*cli, "--end", mid.strftime("%Y-%m-%dT%H:%M:%SZ"), "--out", str(out / "half.parquet")], env)
    rows = {name: json.loads(text.splitlines()[-1])["rows"] if text.strip() else info["spans"] for name, (_, _, text) in figures.items()}
    print(f"spans seeded: {info['spans']:,}  (db {db})")
    print(f"{'contender':<18} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'peak RSS MiB':>13}")
    for name, (seconds, rss, _) in figures.items():
        print(f"{name:<18} {rows[name]:>10,} {seconds:>9.1f} {rows[name] / seconds:>10,.0f} {rss:>13,}")
    fl = figures["floor"][0]
    half_rss, full_rss = figures["export local N/2"][1], figures["export local"][1]
    print("\ngoal                                   measured   target   met")
    for name in ("export local", "export s3"):
        ratio = figures[name][0] / fl
        print(f"{name + ' / floor (seconds)':<38} {ratio:>8.2f}x  <=1.50x   {'yes' if ratio <= 1.5 else 'no'}")
    ratio = full_rss / half_rss
    print(f"{'peak RSS N / N/2 (export local)':<38} {ratio:>8.2f}x  <=1.10x   {'yes' if ratio <= 1.1 else 'no'}")


if __name__ == "__main__":
    main()
