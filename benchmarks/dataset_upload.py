"""Benchmark: `bt-dagster datasets upload` of a large CSV beside the official SDK inserting the same rows.

    python benchmarks/dataset_upload.py [--rows 1000000] [--dir DIR]

A CSV of `--rows` rows (id, question, context, answer, team, score, labels; ~200 bytes of text a
row; some cells hold commas, double quotes and newlines; ~0.2% of the rows repeat an earlier id
with a new answer, so the last one wins) is generated from a fixed seed, once, with its first half
as a second file; both are cached in `--dir` by row count. Each contender gets a fresh local plane:
a copy of an empty SQLite file served by `bt-dagster local serve` on a loopback port (the tests'
`start_plane`), reached through BRAINTRUST_API_KEY / BRAINTRUST_APP_URL, and runs in its own process:

  ours      `bt-dagster datasets upload FILE --input question context --expected answer
            --metadata team score --tags labels --json` over the N file, then (same plane, same
            dataset) the same command again: an unchanged re-upload, which only compares;
  ours N/2  the same command over the N/2 file on its own plane (the peak-RSS ratio);
  floor     the plane's own write ceiling: a script that parses the same CSV with the csv module,
            builds the same rows and POSTs them to `/logs3` in batches of 1000 with four in
            flight (what ours sends), with no validation, staging or comparison (it holds the whole
            file in memory: a speed figure only);
  sdk       a plain script with the official `braintrust` SDK: `init_dataset(project, name,
            app_url, api_key)`, `csv.DictReader` over the same file, `dataset.insert(id, input,
            expected, metadata, tags)` per row with the same mapping, `flush()`. The SDK's
            background queue silently drops the oldest rows once 25,000 are waiting, which an
            insert loop reading a file reaches at once; the script therefore sets the SDK's own
            knob BRAINTRUST_QUEUE_SIZE to the file's row count (its fastest correct setting;
            `--sdk-queue N` overrides it, 0 keeps the SDK's default).

Figures: rows per second (rows read from the file over the wall time of the process, Python
start-up included, the same for all), peak RSS (`ru_maxrss` of the process from `os.wait4`, via a
small launcher process as in pipeline_e2e.py), seconds, and the plane-side requests (deltas of
`GET /local/stats`). After each contender the dataset's live rows are counted in the plane's SQLite
file and must equal the number of distinct ids in the file; a sample of ours' rows must equal the
SDK's (input, expected, metadata, tags). Timings are printed against the goals, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_e2e import Launcher, delta, print_goals  # noqa: E402

PROJECT = "Upload bench"
SEED = 11
GENERATOR = 2  # bump when the generated rows change, so cached files are rebuilt
HEADER = ("id", "question", "context", "answer", "team", "score", "labels")
DUPLICATE_RATE = 0.002
SAMPLE_CHECK = 2000  # rows whose stored content ours and the SDK must agree on

GOAL_SDK_SPEEDUP = 3.0
GOAL_RSS_RATIO = 1.10  # "flat": peak RSS over N rows within 10% of N/2's

MAPPING = ["--input", "question", "context", "--expected", "answer", "--metadata", "team", "score", "--tags", "labels"]

# The SDK contender: what a user would write with the official SDK, run as `python -c`.
# The mapping is ours' for these flags: input {question, context}, expected the answer text,
# metadata {team, score} (cells stay strings), tags the labels split on commas, stripped, deduplicated.
SDK_SCRIPT = r'''
import csv, json, os, sys
import braintrust

path, project, name = sys.argv[1:4]
csv.field_size_limit(1 << 30)
dataset = braintrust.init_dataset(project=project, name=name, app_url=os.environ["BRAINTRUST_APP_URL"],
                                  api_key=os.environ["BRAINTRUST_API_KEY"])
rows = 0
with open(path, encoding="utf-8", newline="") as handle:
    for record in csv.DictReader(handle):
        tags = []
        for tag in record["labels"].split(","):
            tag = tag.strip()
            if tag and tag not in tags:
                tags.append(tag)
        dataset.insert(
            id=record["id"],
            input={"question": record["question"], "context": record["context"]},
            expected=record["answer"],
            metadata={"team": record["team"], "score": record["score"]},
            tags=tags,
        )
        rows += 1
dataset.flush()
print(json.dumps({"rows": rows, "dataset_id": dataset.id}))
'''


# The floor: the least client work that writes the same rows (the plane's own ceiling), as `python -c`.
FLOOR_SCRIPT = r'''
import csv, json, os, sys
from concurrent.futures import ThreadPoolExecutor
import httpx

path, project, name = sys.argv[1:4]
csv.field_size_limit(1 << 30)
http = httpx.Client(base_url=os.environ["BRAINTRUST_APP_URL"], timeout=300,
                    headers={"Authorization": "Bearer " + os.environ["BRAINTRUST_API_KEY"]})
project_id = http.post("/v1/project", json={"name": project}).json()["id"]
dataset_id = http.post("/v1/dataset", json={"project_id": project_id, "name": name}).json()["id"]

def send(batch):
    http.post("/logs3", content=json.dumps({"rows": batch, "api_version": 2}).encode()).raise_for_status()

rows, batch = {}, []
with open(path, encoding="utf-8", newline="") as handle:
    records = list(csv.DictReader(handle))
last = {r["id"]: r for r in records}  # the last row of an id wins, as in ours
with ThreadPoolExecutor(4) as pool:
    for record in last.values():
        tags = []
        for tag in record["labels"].split(","):
            tag = tag.strip()
            if tag and tag not in tags:
                tags.append(tag)
        batch.append({"id": record["id"], "dataset_id": dataset_id, "tags": tags, "expected": record["answer"],
                      "input": {"question": record["question"], "context": record["context"]},
                      "metadata": {"team": record["team"], "score": record["score"]}})
        if len(batch) == 1000:
            pool.submit(send, batch)
            batch = []
    if batch:
        pool.submit(send, batch)
print(json.dumps({"rows": len(records), "dataset_id": dataset_id}))
'''


# -- the file -----------------------------------------------------------------------------------

_WORDS = (
    "account billing invoice refund password login error timeout server request response customer "
    "order shipping delivery address payment card charge plan upgrade downgrade cancel subscription "
    "renewal export import report dashboard chart filter query limit quota region latency retry token "
    "session cookie browser mobile app update version release feature bug crash screen button page "
    "email notification alert webhook integration api key permission role admin user team workspace "
    "project dataset experiment prompt model score metric label review trace span log the a an of to "
    "in on for with from by after before when while because however please thanks again still not"
).split()
_TEAMS = ("billing", "platform", "support", "growth", "infra", "security", "mobile", "data")
_LABELS = ("urgent", "bug", "question", "feature-request", "billing", "regression", "docs", "vip", "p1", "p2", "p3")


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(_WORDS, k=rng.randint(low, high))
    words[0] = words[0].capitalize()
    return " ".join(words)


def _row(rng: random.Random, row_id: str) -> list[str]:
    question = _sentence(rng, 6, 12) + "?"
    context = _sentence(rng, 8, 22) + "."
    answer = _sentence(rng, 5, 14) + "."
    roll = rng.random()
    if roll < 0.05:  # commas and quotes inside cells
        question = f'Why does "{_sentence(rng, 1, 2).lower()}" fail, again, after the update?'
    elif roll < 0.08:  # multi-line cells
        context = context + "\n" + _sentence(rng, 4, 10) + ".\n- " + _sentence(rng, 2, 5)
    elif roll < 0.10:
        answer = f'Set "{rng.choice(_WORDS)}" to {rng.randint(1, 99)}, then retry; see "docs, section {rng.randint(1, 9)}".'
    labels = ",".join(rng.sample(_LABELS, rng.randint(1, 3)))
    if rng.random() < 0.05:
        labels = labels.replace(",", ", ")  # spaces after commas are stripped from tags
    return [row_id, question, context, answer, rng.choice(_TEAMS), f"{rng.random():.3f}", labels]


def csv_files(workdir: Path, rows: int) -> tuple[tuple[Path, int, int], tuple[Path, int, int]]:
    """((N file, rows, distinct ids), (N/2 file, rows, distinct ids)): generated once, reused
    while the sidecar JSON matches. The N/2 file is the N file's first half."""
    half = rows // 2
    full_path, half_path = workdir / f"upload-{rows}.csv", workdir / f"upload-{rows}-half.csv"
    info_path = workdir / f"upload-{rows}.json"
    want = {"rows": rows, "seed": SEED, "generator": GENERATOR}
    if full_path.exists() and half_path.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if {k: info.get(k) for k in want} == want and full_path.stat().st_size == info["bytes"]:
            print(f"reusing {full_path} ({rows:,} rows, {info['bytes'] / 1e6:,.0f} MB)", file=sys.stderr)
            return (full_path, rows, info["distinct"]), (half_path, half, info["half_distinct"])
    print(f"generating {rows:,} rows into {full_path} ...", file=sys.stderr, flush=True)
    rng = random.Random(SEED)
    created: list[int] = []  # numbers of the ids written so far
    half_distinct = 0
    with open(full_path, "w", encoding="utf-8", newline="") as full, open(half_path, "w", encoding="utf-8", newline="") as part:
        writers = [csv.writer(full, lineterminator="\n"), csv.writer(part, lineterminator="\n")]
        for writer in writers:
            writer.writerow(HEADER)
        for n in range(rows):
            if n > 100 and rng.random() < DUPLICATE_RATE:
                row_id = f"case-{created[rng.randrange(len(created) - 100)]:08d}"  # an earlier row again, changed
            else:
                row_id = f"case-{n:08d}"
                created.append(n)
            row = _row(rng, row_id)
            writers[0].writerow(row)
            if n < half:
                writers[1].writerow(row)
                half_distinct = len(created)
    distinct = len(created)
    info_path.write_text(json.dumps({**want, "bytes": full_path.stat().st_size, "distinct": distinct,
                                     "half_distinct": half_distinct}, indent=1))
    return (full_path, rows, distinct), (half_path, half, half_distinct)


# -- the plane ----------------------------------------------------------------------------------


class Plane:
    """One served plane over a fresh copy of the empty file; counts read from that file."""

    def __init__(self, empty: Path, db: Path):
        import httpx

        sys.path.insert(0, str(REPO / "tests"))
        from conftest import start_plane  # the same helper the tests use

        for path in db.parent.glob(db.name + "*"):
            path.unlink()
        shutil.copyfile(empty, db)
        self.db = db
        self.served = start_plane(db)
        self.url, self.key = self.served.url, self.served.api_key
        self.http = self.served.client()
        self.http.timeout = httpx.Timeout(600)

    def requests(self) -> dict[str, int]:
        response = self.http.get("/local/stats")
        response.raise_for_status()
        return response.json()["requests"]

    def close(self) -> None:
        from conftest import stop_plane

        self.http.close()
        stop_plane(self.served)


def dataset_rows(db: Path, dataset_id: str) -> int:
    """Live rows of the dataset, straight from the plane's file (the ground truth)."""
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT pk FROM objects WHERE kind = 'dataset' AND id = ?", (dataset_id,)).fetchone()
        if found is None:
            return 0
        (count,) = conn.execute("SELECT count(*) FROM rows WHERE obj = ? AND head = 1 AND deleted = 0", found).fetchone()
        return count
    finally:
        conn.close()


def dataset_content(db: Path, dataset_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'dataset' AND id = ?", (dataset_id,)).fetchone()
        out = {}
        for row_id in ids:
            (data,) = conn.execute("SELECT data FROM rows WHERE obj = ? AND id = ? AND head = 1 AND deleted = 0", (obj, row_id)).fetchone()
            row = json.loads(data)
            out[row_id] = {k: row.get(k) for k in ("input", "expected", "metadata", "tags")}
        return out
    finally:
        conn.close()


def empty_db(workdir: Path) -> Path:
    from pipelines_repo.local.store.db import Database

    path = workdir / "empty.db"
    for stale in workdir.glob("empty.db*"):
        stale.unlink()
    db = Database(path)
    db._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="working directory; keeps the CSV files for reruns (default: a temporary one)")
    parser.add_argument("--sdk-queue", type=int, help="BRAINTRUST_QUEUE_SIZE for the SDK (default: the file's rows; 0: the SDK's default)")
    parser.add_argument("--no-reupload", action="store_true", help="skip ours' unchanged re-upload")
    args = parser.parse_args()
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    launcher = Launcher()  # first, while this process is small (see pipeline_e2e.Launcher)
    try:
        run(args, launcher)
    finally:
        launcher.close()


def run(args: argparse.Namespace, launcher: Launcher) -> None:
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bt-bench-upload-"))
    workdir.mkdir(parents=True, exist_ok=True)
    startup = launcher.run([sys.executable, "-c", "pass"])
    (full, rows, distinct), (half, half_rows, half_distinct) = csv_files(workdir, args.rows)
    empty = empty_db(workdir)
    for path in (full, half):  # warm the page cache, so no contender alone pays for a cold file
        with open(path, "rb") as handle:
            while handle.read(1 << 24):
                pass

    bt = str(Path(sys.executable).parent / "bt-dagster")
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("BRAINTRUST_API_URL", "BRAINTRUST_ORG_NAME", "BT_LOCAL_DB", "BRAINTRUST_QUEUE_SIZE")}
    results: dict[str, dict[str, Any]] = {}
    dbs: dict[str, tuple[Path, str]] = {}

    def contender(name: str, plane: Plane, cmd: list[str], expected: int, file_rows: int, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
        env = {**base_env, "BRAINTRUST_API_KEY": plane.key, "BRAINTRUST_APP_URL": plane.url, **(extra_env or {})}
        print(f"{name} ...", file=sys.stderr, flush=True)
        before = plane.requests()
        result = launcher.run(cmd, env=env, cwd=workdir)
        result["routes"] = delta(before, plane.requests())
        result["requests"] = sum(result["routes"].values())
        result["summary"] = json.loads(result["stdout"].strip().splitlines()[-1])
        result["stored"] = dataset_rows(plane.db, result["summary"]["dataset_id"])
        result["file_rows"] = file_rows
        if result["stored"] != expected:
            raise SystemExit(f"{name}: the dataset holds {result['stored']:,} rows, the file has {expected:,} distinct ids")
        print(f"{name}: {result['seconds']:.1f} s, {result['stored']:,} rows stored", file=sys.stderr, flush=True)
        results[name] = result
        return result

    def ours_cmd(path: Path, dataset: str) -> list[str]:
        return [bt, "datasets", "upload", str(path), "--project", PROJECT, "--dataset", dataset, *MAPPING, "--json"]

    planes: list[Plane] = []
    try:
        plane = Plane(empty, workdir / "plane-ours.db")
        planes.append(plane)
        r = contender("ours", plane, ours_cmd(full, "bench ours"), distinct, rows)
        s = r["summary"]
        if (s["read"], s["rows"], s["added"], s["duplicates"]) != (rows, distinct, distinct, rows - distinct):
            raise SystemExit(f"ours: unexpected summary {({k: s[k] for k in ('read', 'rows', 'added', 'updated', 'duplicates')})}")
        dbs["ours"] = (plane.db, s["dataset_id"])
        if not args.no_reupload:
            r = contender("ours again", plane, ours_cmd(full, "bench ours"), distinct, rows)
            s = r["summary"]
            if (s["added"], s["updated"], s["unchanged"]) != (0, 0, distinct):
                raise SystemExit(f"ours again: an unchanged file wrote rows: {({k: s[k] for k in ('added', 'updated', 'unchanged')})}")
        plane.close()
        planes.remove(plane)

        plane = Plane(empty, workdir / "plane-half.db")
        planes.append(plane)
        contender("ours N/2", plane, ours_cmd(half, "bench ours half"), half_distinct, half_rows)
        plane.close()
        planes.remove(plane)

        plane = Plane(empty, workdir / "plane-floor.db")
        planes.append(plane)
        contender("floor", plane, [sys.executable, "-c", FLOOR_SCRIPT, str(full), PROJECT, "bench floor"], distinct, rows)
        plane.close()
        planes.remove(plane)

        plane = Plane(empty, workdir / "plane-sdk.db")
        planes.append(plane)
        queue = rows + 1 if args.sdk_queue is None else args.sdk_queue
        r = contender("sdk", plane, [sys.executable, "-c", SDK_SCRIPT, str(full), PROJECT, "bench sdk"], distinct, rows,
                      {"BRAINTRUST_QUEUE_SIZE": str(queue)} if queue else None)
        if r["summary"]["rows"] != rows:
            raise SystemExit(f"sdk: inserted {r['summary']['rows']:,} of {rows:,} rows")
        dbs["sdk"] = (plane.db, r["summary"]["dataset_id"])
        plane.close()
        planes.remove(plane)
    finally:
        for plane in planes:
            plane.close()

    # Same mapping, same rows: a sample of ids must hold the same content in both datasets.
    sample = [f"case-{n:08d}" for n in random.Random(SEED + 1).sample(range(rows), SAMPLE_CHECK)]
    sample = [i for i in sample if i in set(dataset_ids_sample(dbs["ours"], sample))]
    ours_rows, sdk_rows = dataset_content(*dbs["ours"], sample), dataset_content(*dbs["sdk"], sample)
    mismatched = [i for i in sample if ours_rows[i] != sdk_rows[i]]
    if mismatched:
        i = mismatched[0]
        raise SystemExit(f"{len(mismatched)} of {len(sample)} sampled rows differ between ours and the SDK, e.g. {i}:\n"
                         f" ours {ours_rows[i]}\n sdk  {sdk_rows[i]}")

    print_report(results, full, rows, distinct, half_rows, startup, len(sample))

    for path in [*workdir.glob("plane-*.db*"), *workdir.glob("empty.db*")]:
        path.unlink()
    if not args.dir:
        shutil.rmtree(workdir)


def dataset_ids_sample(db_and_id: tuple[Path, str], ids: list[str]) -> list[str]:
    """Those of `ids` that are live rows of the dataset."""
    db, dataset_id = db_and_id
    conn = sqlite3.connect(db)
    try:
        (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'dataset' AND id = ?", (dataset_id,)).fetchone()
        return [i for i in ids if conn.execute("SELECT 1 FROM rows WHERE obj = ? AND id = ? AND head = 1 AND deleted = 0", (obj, i)).fetchone()]
    finally:
        conn.close()


def print_report(results: dict[str, dict[str, Any]], full: Path, rows: int, distinct: int, half_rows: int,
                 startup: dict[str, Any], sampled: int) -> None:
    size_mb = full.stat().st_size / 1e6
    print("dataset upload benchmark: CSV -> dataset (input {question, context}, expected answer, metadata {team, score}, tags labels)")
    print(f"{rows:,} rows ({distinct:,} distinct ids), {size_mb:,.0f} MB, {size_mb * 1e6 / rows:,.0f} bytes a row;"
          f" {os.cpu_count()} CPUs; a fresh served plane per contender")
    print(f"{'contender':<12}{'file rows':>11}{'stored':>11}{'requests':>10}{'rows/s':>10}{'peak RSS MB':>13}{'seconds':>9}")
    for name in ("ours", "ours again", "ours N/2", "floor", "sdk"):
        r = results.get(name)
        if r is None:
            continue
        r["rate"] = r["file_rows"] / r["seconds"]
        r["rss_mb"] = r["maxrss_kib"] * 1024 / 1e6
        print(f"{name:<12}{r['file_rows']:>11,}{r['stored']:>11,}{r['requests']:>10,}{r['rate']:>10,.0f}"
              f"{r['rss_mb']:>13.0f}{r['seconds']:>9.1f}")
    print("(rows/s: rows read from the file over the process's wall time, start-up included; `ours again`: the same file"
          f" into the same dataset, nothing to write; `python -c pass`: {startup['seconds']:.2f} s,"
          f" {startup['maxrss_kib'] * 1024 / 1e6:.0f} MB; {sampled:,} sampled rows identical in ours' and the SDK's dataset)")
    for name in ("ours", "ours again", "sdk"):
        if name in results:
            routes = ", ".join(f"{k} {v}" for k, v in results[name]["routes"].items())
            print(f"requests by route, {name}: {routes}")

    ours_r, sdk_r, half_r = results["ours"], results["sdk"], results["ours N/2"]
    speedup = ours_r["rate"] / sdk_r["rate"]
    rss_ratio = ours_r["maxrss_kib"] / half_r["maxrss_kib"]
    extra = ours_r["file_rows"] - half_r["file_rows"]
    per_row = 1024 * (ours_r["maxrss_kib"] - half_r["maxrss_kib"]) / extra if extra > 0 else 0.0
    goals = [
        (f"ours vs SDK rows/s >= {GOAL_SDK_SPEEDUP:g}x", f"{ours_r['rate']:,.0f} / {sdk_r['rate']:,.0f} = {speedup:.2f}x",
         speedup >= GOAL_SDK_SPEEDUP),
        (f"peak RSS flat (N vs N/2 <= {GOAL_RSS_RATIO:.2f}x)",
         f"{ours_r['rss_mb']:.0f} / {half_r['rss_mb']:.0f} MB = {rss_ratio:.2f}x", rss_ratio <= GOAL_RSS_RATIO),
    ]
    print_goals(goals, widths=(40, 30))
    print(f"(peak RSS, N minus N/2: {per_row:+,.0f} bytes per extra file row)")
    if "floor" in results:
        floor = results["floor"]
        print(f"the plane's write ceiling (floor: parse, build, POST /logs3, nothing else): {floor['rate']:,.0f} rows/s;"
              f" ours {ours_r['rate'] / floor['rate']:.2f}x of it, the SDK {sdk_r['rate'] / floor['rate']:.2f}x;"
              f" {GOAL_SDK_SPEEDUP:g}x the SDK would be {GOAL_SDK_SPEEDUP * sdk_r['rate'] / floor['rate']:.2f}x the ceiling")
    if "ours again" in results:
        again = results["ours again"]
        print(f"unchanged re-upload: {again['seconds']:.1f} s ({again['seconds'] / ours_r['seconds']:.2f}x the first upload),"
              f" {again['rate']:,.0f} rows/s, {again['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
