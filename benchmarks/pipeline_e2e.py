"""Benchmark: two pipelines end to end (span and trace scope), beside the official SDK and raw SQLite.

    python benchmarks/pipeline_e2e.py [--spans 1000000] [--days 30] [--scope span|trace|both] [--dir DIR]
    python benchmarks/pipeline_e2e.py --spans 50000 --remote [--latency-ms 50] [--btql-rate-limit 20] [--bt-budget-s 120]

Demo logs (`generate_demo_logs`, comments included) are seeded into a SQLite file through the
in-process plane (cached in `--dir`: a `seed.db` with the same spans/days is reused), copied to a
fresh working file, and served by `bt-dagster local serve` on a loopback port. Then, over the
absolute window covering the seeded days, each pipeline is run by three contenders, each into its
own dataset, each in its own process:

- span scope: `pipelines_repo/pipelines/support_cases.py` (filter `metadata.flagged = true`,
  transform `flagged_span_to_case`);
- trace scope: `pipelines_repo/pipelines/trace_llm_calls.py` (filter `scores.correctness >= 0.7`,
  async transform `llm_calls_to_example` reading the trace's LLM spans through `get_spans`).

  ours   `bt-dagster datasets pipeline run FILE --start --end --no-limit --json` against the served
         plane (BRAINTRUST_API_KEY / BRAINTRUST_APP_URL), also over the first half of the window;
  sdk    a plain script with the official `braintrust` SDK through its logged-in connection, the
         same transform imported from the pipeline file, `init_dataset(...).insert(...)` per row,
         flush. Span scope: BTQL paging (1000 a page, span payloads) of the matching spans. Trace
         scope: paging the matching spans' root ids, then their traces 100 roots a query (not the
         SDK Trace's one query per trace), each handed to the transform as a Trace of SpanData;
  floor  raw SQLite: the same rows read straight from the plane's file (`json_type` filter; trace
         scope: the matching roots, then their spans 100 roots a query), JSON-decoded,
         transformed, written JSON-encoded into a table of a separate SQLite file in transactions
         of 1000 (`--floor-only`, run as a subprocess).

Figures: API requests per 1000 target rows (deltas of the plane's `GET /local/stats` around each
contender), rows per second (wall time of the process, Python start-up included, the same for all
three), peak RSS (`ru_maxrss` of the process from `os.wait4`), seconds, and the goals: ours at
least 1.5x the SDK script's speed, at most 2x the floor's time, peak RSS flat (at most 1.1x from
the half window to the whole). After each contender the target's row count is read back (`/btql`
paging of the dataset's ids; the floor: its table) and must equal the ground truth counted from
the plane's file (matching spans; traces with a matching span and an LLM span).

`--remote` runs only the remote-like comparison instead: ours against `bt`, a script replaying bt's
documented request pattern (discovery `/btql` pages of the ref fields, 1000 a page; then in runner
batches of `os.cpu_count()` a login and one whole-trace `/btql` per span; the transform; the target
lookups and `/logs3` batches of 1000), each on a freshly started `local serve --latency-ms
--btql-rate-limit` plane, at 0 ms, at `--latency-ms`, and at `--latency-ms` with `--btql-rate-limit`
BTQL a minute. Under the limit bt's fetches are stopped after `--bt-budget-s` and its time is
extrapolated: its measured fetch rate scaled to every candidate, never below what the limit alone
allows for its BTQL count (both are printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plane_counts import CORRECT, FLAGGED, count_matching, count_window, seeded_db  # noqa: E402

PIPELINE = REPO / "pipelines_repo" / "pipelines" / "support_cases.py"
TRANSFORM = "flagged_span_to_case"
PROJECT = "Customer Support"  # the pipeline's source and target project
SEED = 7

GOAL_SDK_SPEEDUP = 1.5  # ours at least 1.5x the speed of the plain SDK script
GOAL_FLOOR_RATIO = 2.0  # ours at most 2x the raw SQLite floor's time
GOAL_RSS_RATIO = 1.10  # "flat": peak RSS over the whole window within 10% of the half window's

TRACE_PIPELINE = REPO / "pipelines_repo" / "pipelines" / "trace_llm_calls.py"
TRACE_TRANSFORM = "llm_calls_to_example"
TRACE_FILTER = "scores.correctness >= 0.7"

# Both SDK scripts: load the pipeline file's transform, log in, open the target dataset.
SDK_PRELUDE = '''
spec = importlib.util.spec_from_file_location("pipeline_under_test", pipeline_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
transform = getattr(module, transform_name)

braintrust.login()  # BRAINTRUST_APP_URL, BRAINTRUST_API_KEY
dataset = braintrust.init_dataset(project=project, name=dataset_name)
conn = _internal_get_global_state().api_conn()
'''

# The SDK contender: what a user would write with the official SDK, run as `python -c`.
SDK_SCRIPT = r'''
import importlib.util, json, sys
import braintrust
from braintrust.logger import _internal_get_global_state

pipeline_path, transform_name, project, dataset_name, start, end = sys.argv[1:7]
''' + SDK_PRELUDE + r'''query = {
    "select": [{"op": "star"}],
    "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
             "args": [{"op": "literal", "value": dataset.project.id}], "shape": "spans"},
    "filter": {"btql": f"created >= '{start}' AND created < '{end}' AND metadata.flagged = true"},
    "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}],
}
rows, cursor = 0, None
while True:
    response = conn.post("btql", json={"query": {**query, "limit": 1000, "cursor": cursor}, "fmt": "json"})
    response.raise_for_status()
    page = response.json()
    for span in page["data"]:
        row = transform(input=span.get("input"), output=span.get("output"), metadata=span.get("metadata") or {})
        dataset.insert(id=span["id"], **row)
        rows += 1
    cursor = page.get("cursor")
    if not cursor or not page["data"]:
        break
dataset.flush()
print(json.dumps({"rows": rows, "dataset_id": dataset.id}))
'''


# The SDK contender in trace scope: what a careful user would write with the official SDK, run as
# `python -c`: page the matching spans' root ids (1000 a page), then fetch their traces 100 roots a
# query (not one query per trace, as the SDK's own Trace does), hand each transform a Trace whose
# get_spans answers from the fetched spans as SDK SpanData, `init_dataset(...).insert(...)` per row.
SDK_TRACE_SCRIPT = r'''
import asyncio, importlib.util, json, sys
import braintrust
from braintrust.logger import _internal_get_global_state
from braintrust.trace import SpanData

pipeline_path, transform_name, project, dataset_name, start, end, source_filter = sys.argv[1:8]
''' + SDK_PRELUDE + r'''source = {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
          "args": [{"op": "literal", "value": dataset.project.id}], "shape": "spans"}

def pages(query):
    cursor = None
    while True:
        response = conn.post("btql", json={"query": {**query, "limit": 1000, "cursor": cursor}, "fmt": "json"})
        response.raise_for_status()
        page = response.json()
        yield page["data"]
        cursor = page.get("cursor")
        if not cursor or not page["data"]:
            return

class ScriptTrace:
    def __init__(self, spans):
        self.spans = spans
    async def get_spans(self, span_type=None):
        return [SpanData.from_dict(s) for s in self.spans
                if span_type is None or (s.get("span_attributes") or {}).get("type") in span_type]

roots, seen = [], set()
for page in pages({"select": [{"alias": "root_span_id", "expr": {"op": "ident", "name": ["root_span_id"]}}],
                   "from": source, "filter": {"btql": f"created >= '{start}' AND created < '{end}' AND ({source_filter})"},
                   "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}]}):
    for row in page:
        if row["root_span_id"] not in seen:
            seen.add(row["root_span_id"])
            roots.append(row["root_span_id"])

async def main():
    rows = 0
    for i in range(0, len(roots), 100):
        batch = roots[i:i + 100]
        traces = {root: [] for root in batch}
        for page in pages({"select": [{"op": "star"}], "from": source,
                           "filter": {"op": "in", "left": {"op": "ident", "name": ["root_span_id"]},
                                      "right": {"op": "literal", "value": batch}}}):
            for span in page:
                traces[span["root_span_id"]].append(span)
        for root in batch:
            row = await transform(trace=ScriptTrace(traces[root]))
            if row is not None:
                dataset.insert(id=root, **row)
                rows += 1
    return rows

rows = asyncio.run(main())
dataset.flush()
print(json.dumps({"rows": rows, "dataset_id": dataset.id}))
'''


# The bt contender: bt's documented request pattern (docs/BT_COMPAT.md §2, §3, §4, limitation 3),
# replayed with httpx, run as `python -c`. Left out, in bt's favour: bt's runner process per batch
# (start-up, re-import), and bt's discovery failing on 429 (it retries only 5xx/413): here every
# 429 is waited out for its Retry-After.
BT_SCRIPT = r"""
import importlib.util, json, os, sys, time
from datetime import datetime, timezone
import httpx

pipeline_path, transform_name, project, dataset_name, start, end, source_filter, budget = sys.argv[1:9]
budget = float(budget)
spec = importlib.util.spec_from_file_location("pipeline_under_test", pipeline_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
transform = getattr(module, transform_name)

http = httpx.Client(base_url=os.environ["BRAINTRUST_APP_URL"], timeout=600,
                    headers={"Authorization": "Bearer " + os.environ["BRAINTRUST_API_KEY"]})
phase = "discovery"
sent = {"discovery": 0, "fetch": 0, "write": 0}
refused = 0

def call(method, path, **kw):
    global refused
    while True:
        sent[phase] += 1
        r = http.request(method, path, **kw)
        if r.status_code == 429:
            refused += 1
            time.sleep(float(r.headers.get("retry-after") or 1))
            continue
        r.raise_for_status()
        return r

def source(kind, object_id):
    return {"op": "function", "name": {"op": "ident", "name": [kind]},
            "args": [{"op": "literal", "value": object_id}], "shape": "spans"}

t0 = time.perf_counter()
call("POST", "/api/apikey/login")
project_id = call("GET", "/v1/project", params={"project_name": project}).json()["objects"][0]["id"]
# Discovery: the ref fields only, 1000 a page, newest first; window AND source filter.
fields = ["root_span_id", "id", "created", "_xact_id"]
query = {"select": [{"alias": f, "expr": {"op": "ident", "name": [f]}} for f in fields],
         "from": source("project_logs", project_id),
         "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}],
         "filter": {"op": "and", "children": [{"btql": f"created >= '{start}' AND created < '{end}'"},
                                              {"btql": source_filter}]}}
refs, seen, cursor, pages = [], set(), None, 0
while True:
    page = call("POST", "/btql", json={"query": {**query, "limit": 1000, "cursor": cursor}, "fmt": "json",
                                        "query_source": "bt_sync_discovery"}).json()
    pages += 1
    for row in page["data"]:
        key = (row.get("root_span_id"), row.get("id"))
        if key[0] and key[1] and key not in seen:
            seen.add(key)
            refs.append(row)
    cursor = page.get("cursor")
    if not cursor or not page["data"]:
        break
t_discovery = time.perf_counter()

# Transform: runner batches of the CPU count; each runner logs in, then per span ref one whole-trace
# fetch (the SDK's ObjectFetcher, paging until no cursor), synchronous inside its event loop.
phase = "fetch"
batch_size = os.cpu_count() or 16
rows, fetched = [], 0
for i in range(0, len(refs), batch_size):
    if budget and time.perf_counter() - t0 > budget:
        break
    call("POST", "/api/apikey/login")
    for ref in refs[i:i + batch_size]:
        root = {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]},
                "right": {"op": "literal", "value": ref["root_span_id"]}}
        spans, cursor = [], None
        while True:
            page = call("POST", "/btql", json={
                "query": {"select": [{"op": "star"}], "from": source("project_logs", project_id),
                          "filter": {"op": "and", "children": [root]}, "limit": 1000, "cursor": cursor},
                "use_columnstore": False, "brainstore_realtime": True,
                "query_source": "py_sdk_object_fetcher_project_logs"}).json()
            spans.extend(page["data"])
            cursor = page.get("cursor")
            if not cursor:
                break
        span = next(s for s in spans if s.get("id") == ref["id"] or s.get("span_id") == ref["id"])
        row = transform(input=span.get("input"), output=span.get("output"), metadata=span.get("metadata") or {})
        origin = {"_xact_id": ref["_xact_id"], "created": ref["created"], "id": ref["id"],
                  "object_id": project_id, "object_type": "project_logs"}
        rows.append({"id": ref["id"], **row, "origin": origin})
        fetched += 1
t_fetch = time.perf_counter()

# run's upload: target project and dataset, then sequential /logs3 batches of 1000 rows.
phase = "write"
target = call("GET", "/v1/project", params={"project_name": project}).json()["objects"][0]["id"]
found = [d for d in call("GET", "/v1/dataset", params={"project_id": target}).json()["objects"] if d["name"] == dataset_name]
dataset_id = found[0]["id"] if found else call("POST", "/v1/dataset", json={"name": dataset_name, "project_id": target}).json()["id"]
call("GET", "/version")
now = datetime.now(timezone.utc).isoformat()
for i in range(0, len(rows), 1000):
    batch = [{**r, "dataset_id": dataset_id, "created": now} for r in rows[i:i + 1000]]
    call("POST", "/logs3", json={"rows": batch, "api_version": 2})
t_write = time.perf_counter()
print(json.dumps({"candidates": len(refs), "fetched": fetched, "rows": len(rows), "pages": pages,
                  "dataset_id": dataset_id, "sent": sent, "refused": refused,
                  "seconds": {"discovery": t_discovery - t0, "fetch": t_fetch - t_discovery, "write": t_write - t_fetch}}))
"""


# -- helpers ------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """Canonical UTC text, as the plane stores `created` (text order = time order)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_transform(pipeline: Path, name: str):
    spec = importlib.util.spec_from_file_location("pipeline_under_test", pipeline)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


class Launcher:
    """Starts the contenders and reports their wall time and peak RSS.

    On Linux a child's ``ru_maxrss`` is at least the peak RSS of the process that forked it (the
    high-water mark survives fork and exec), so children of this process, which has seeded and
    counted, would all report this process's peak. The contenders are therefore spawned by a small
    launcher process started first, whose own peak (~10 MB, reported as `python -c pass`) is below
    any contender's. It spawns each command, waits for it with ``os.wait4`` and answers
    ``{"seconds", "maxrss_kib", "status"}``.
    """

    SCRIPT = r"""
import json, os, sys, time
for line in sys.stdin:
    job = json.loads(line)
    os.chdir(job["cwd"])
    with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
        actions = [(os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        t0 = time.perf_counter()
        pid = os.posix_spawn(job["cmd"][0], job["cmd"], job["env"], file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "maxrss_kib": usage.ru_maxrss, "status": os.waitstatus_to_exitcode(status)}), flush=True)
"""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def run(self, cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, Any]:
        """Run `cmd` to completion: wall seconds, peak RSS (KiB), stdout; an error if it fails."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            job = {"cmd": cmd, "env": dict(os.environ if env is None else env), "cwd": str(cwd or Path.cwd()),
                   "stdout": str(out), "stderr": str(err)}
            assert self.process.stdin is not None and self.process.stdout is not None
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.flush()
            result = json.loads(self.process.stdout.readline())
            result["stdout"], result["stderr"] = out.read_text(), err.read_text()
        if result["status"] != 0:
            raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {result['status']}:\n{result['stderr'][-4000:]}")
        return result

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)




# -- contenders ---------------------------------------------------------------------------------


def floor_only(args: argparse.Namespace) -> None:
    """The raw floor, in this process: SQLite -> json.loads -> transform -> SQLite (1000 a transaction)."""
    t0 = time.perf_counter()
    src = sqlite3.connect(args.db)
    (obj,) = src.execute("SELECT pk FROM objects WHERE kind = 'project' AND id = ?", (args.project_id,)).fetchone()
    dst = sqlite3.connect(args.out, isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=NORMAL")
    dst.execute("CREATE TABLE cases (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    insert = "INSERT OR REPLACE INTO cases(id, data) VALUES (?, ?)"
    batch: list[tuple[str, str]] = []

    def write(row_id: str, row: dict[str, Any], origin: tuple[str, str, str]) -> None:
        row = {"id": row_id, **row, "origin": {"_xact_id": origin[1], "created": origin[2], "id": origin[0],
                                               "object_id": args.project_id, "object_type": "project_logs"}}
        batch.append((row_id, dumps(row)))
        if len(batch) == 1000:
            flush()

    def flush() -> None:
        dst.execute("BEGIN")
        dst.executemany(insert, batch)
        dst.execute("COMMIT")
        batch.clear()

    window = "obj = ? AND head = 1 AND deleted = 0 AND created >= ? AND created < ?"
    if args.scope == "trace":
        rows = _floor_traces(src, obj, window, args, write)
    else:
        transform = load_transform(args.pipeline, TRANSFORM)
        rows = 0
        cursor = src.execute(f"SELECT id, created, xact_id, data FROM rows WHERE {window} AND {FLAGGED}"
                             " ORDER BY pagination_key DESC", (obj, args.start, args.end))
        for span_id, created, xact, data in cursor:
            span = json.loads(data)
            row = transform(input=span.get("input"), output=span.get("output"), metadata=span.get("metadata") or {})
            write(span_id, row, (span_id, str(xact), created))
            rows += 1
    if batch:
        flush()
    dst.close()
    src.close()
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}))


class _FloorTrace:
    """The least a trace-scope transform needs: `get_spans(span_type)` over spans already read."""

    def __init__(self, spans: list[dict[str, Any]]):
        self.spans = spans

    async def get_spans(self, span_type: list[str] | None = None) -> list[Any]:
        from braintrust.trace import SpanData

        return [SpanData.from_dict(s) for s in self.spans
                if span_type is None or (s.get("span_attributes") or {}).get("type") in span_type]


def _floor_traces(src: sqlite3.Connection, obj: int, window: str, args: argparse.Namespace, write: Any) -> int:
    """Trace scope by hand: the matching roots, their spans 100 roots a query, the async transform
    driven without an event loop (it awaits nothing that suspends)."""
    transform = load_transform(args.pipeline, TRACE_TRANSFORM)
    roots = [r for (r,) in src.execute(f"SELECT DISTINCT root_span_id FROM rows WHERE {window} AND {CORRECT}",
                                       (obj, args.start, args.end))]
    rows = 0
    for i in range(0, len(roots), 100):
        batch = roots[i:i + 100]
        traces: dict[str, list[dict[str, Any]]] = {root: [] for root in batch}
        origins: dict[str, tuple[str, str, str]] = {}
        for rid, root, created, xact, is_root, data in src.execute(
            "SELECT id, root_span_id, created, xact_id, is_root, data FROM rows WHERE obj = ? AND head = 1 AND deleted = 0"
            f" AND root_span_id IN ({','.join('?' * len(batch))})", (obj, *batch),
        ):
            span = json.loads(data)
            span["span_id"] = rid
            traces[root].append(span)
            if is_root:
                origins[root] = (rid, str(xact), created)
        for root in batch:
            coroutine = transform(trace=_FloorTrace(traces[root]))
            try:
                coroutine.send(None)
                raise RuntimeError("the trace transform suspended: the floor cannot drive it")
            except StopIteration as done:
                row = done.value
            if row is not None:
                write(root, row, origins[root])
                rows += 1
    return rows


class Plane:
    """The served plane, its request counters, and read-back of a dataset's rows."""

    def __init__(self, db: Path, extra_args: list[str] | None = None):
        import httpx

        sys.path.insert(0, str(REPO / "tests"))
        from conftest import start_plane  # the same helper the tests use

        self.db = db
        self.served = start_plane(db, extra_args=extra_args)
        self.url, self.key = self.served.url, self.served.api_key
        self.http = self.served.client()
        self.http.timeout = httpx.Timeout(600)

    def btql(self, body: dict[str, Any]) -> dict[str, Any]:
        """One /btql page; a remote-like plane's 429 is waited out (Retry-After)."""
        while True:
            response = self.http.post("/btql", json=body)
            if response.status_code != 429:
                response.raise_for_status()
                return response.json()
            time.sleep(float(response.headers.get("retry-after") or 1))

    def requests(self) -> dict[str, int]:
        response = self.http.get("/local/stats")
        response.raise_for_status()
        return response.json()["requests"]

    def read_flagged(self, project_id: str, lo: str, hi: str) -> tuple[int, int, float]:
        """Page the flagged spans of the window with payloads, rows decoded, nothing else:
        (rows, pages, seconds), the plane's share of any HTTP contender's time."""
        source = {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                  "args": [{"op": "literal", "value": project_id}], "shape": "spans"}
        query = {"select": [{"op": "star"}], "from": source,
                 "filter": {"btql": f"created >= '{lo}' AND created < '{hi}' AND metadata.flagged = true"},
                 "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": "desc"}]}
        t0 = time.perf_counter()
        rows = pages = 0
        cursor = None
        while True:
            page = self.btql({"query": {**query, "limit": 1000, "cursor": cursor}, "fmt": "json"})
            rows, pages, cursor = rows + len(page["data"]), pages + 1, page.get("cursor")
            if not cursor or not page["data"]:
                return rows, pages, time.perf_counter() - t0

    def dataset_ids(self, dataset_id: str) -> set[str]:
        source = {"op": "function", "name": {"op": "ident", "name": ["dataset"]},
                  "args": [{"op": "literal", "value": dataset_id}], "shape": "spans"}
        query = {"select": [{"alias": "id", "expr": {"op": "ident", "name": ["id"]}}], "from": source}
        ids: set[str] = set()
        cursor = None
        while True:
            page = self.btql({"query": {**query, "limit": 1000, "cursor": cursor}, "fmt": "json"})
            ids.update(row["id"] for row in page["data"])
            cursor = page.get("cursor")
            if not cursor or not page["data"]:
                return ids

    def close(self) -> None:
        from conftest import stop_plane

        self.http.close()
        stop_plane(self.served)


def print_goals(goals: list[tuple[str, str, bool]], *, title: str = "goal", widths: tuple[int, int] = (46, 24)) -> None:
    """A goal table: each goal's label, what was measured, and whether it is met."""
    label_w, measured_w = widths
    print(f"{title:<{label_w}}{'measured':>{measured_w}}  met")
    for label, measured, met in goals:
        print(f"{label:<{label_w}}{measured:>{measured_w}}  {'yes' if met else 'NO'}")


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(set(before) | set(after)) if after.get(k, 0) != before.get(k, 0)}


def measure(launcher: Launcher, plane: Plane, cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    before = plane.requests()
    result = launcher.run(cmd, env=env, cwd=cwd)
    result["routes"] = delta(before, plane.requests())
    result["requests"] = sum(result["routes"].values())
    return result


# -- the remote-like comparison -----------------------------------------------------------------


GOAL_REMOTE_SPEEDUP = 50.0  # ours vs bt's request pattern at 50 ms a response


@dataclass
class Window:
    """The seeded window every contender runs over."""

    workdir: Path
    info: dict[str, Any]
    project_id: str
    plane_db: Path
    lo: str
    hi: str
    spans: int
    flagged: int


def bt_pattern(launcher: Launcher, plane: Plane, w: Window, env: dict[str, str], dataset: str,
               budget: float, limit: int | None) -> dict[str, Any]:
    """bt's request pattern against `plane`. Cut short by `budget`, its time and requests are
    extrapolated to every candidate from the measured fetch rate, and never below what the rate
    limit alone allows (`limit` BTQL a minute): `extrapolated` says so."""
    cmd = [sys.executable, "-c", BT_SCRIPT, str(PIPELINE), TRANSFORM, PROJECT, dataset, w.lo, w.hi,
           "metadata.flagged = true", str(budget)]
    result = measure(launcher, plane, cmd, env, w.workdir)
    out = json.loads(result["stdout"].strip().splitlines()[-1])
    result.update(out=out, refused=out["refused"], extrapolated=out["fetched"] < out["candidates"])
    assert out["candidates"] == w.flagged, ("bt candidates", out["candidates"], w.flagged)
    rows = len(plane.dataset_ids(out["dataset_id"]))
    assert rows == out["fetched"], ("bt rows", rows, out["fetched"])
    if result["extrapolated"]:
        assert out["fetched"] > 0, "bt fetched no trace within --bt-budget-s: raise it"
        scale = out["candidates"] / out["fetched"]
        fetch_served = result["routes"].get("POST /btql", 0) - out["pages"]  # trace fetches the plane answered
        batches = -(-out["candidates"] // 1000) - -(-out["fetched"] // 1000)  # more /logs3 batches
        result["measured_seconds"] = result["seconds"]
        extra_btql = fetch_served * (scale - 1)
        result["requests"] = round(result["requests"] + extra_btql + batches
                                   + (result["routes"].get("POST /api/apikey/login", 0) - 1) * (scale - 1))
        linear = result["seconds"] + out["seconds"]["fetch"] * (scale - 1)
        total_btql = out["pages"] + fetch_served * scale
        floor = (total_btql - limit) * 60 / limit if limit else 0.0  # R free at once, then R a minute
        result["seconds"] = max(linear, floor)
        result["note"] = (f"bt extrapolated: {out['fetched']:,} of {out['candidates']:,} spans fetched in "
                          f"{result['measured_seconds']:.0f} s (--bt-budget-s {budget:g}), scaled x{scale:.1f} by its "
                          f"measured fetch rate: {linear:,.0f} s; the {limit}/min limit alone needs {floor:,.0f} s "
                          f"for its {total_btql:,.0f} BTQL requests; the larger is shown")
    return result


def remote_comparison(args: argparse.Namespace, launcher: Launcher, w: Window, env: dict[str, str], bt: str) -> None:
    """Ours vs bt's request pattern on remote-like planes, each contender on a freshly started
    plane (its own empty rate window): 0 ms, `--latency-ms`, and that with `--btql-rate-limit`."""
    settings = [("0 ms", 0.0, None), (f"{args.latency_ms:g} ms", args.latency_ms, None),
                (f"{args.latency_ms:g} ms + {args.btql_rate_limit} BTQL/min", args.latency_ms, args.btql_rate_limit)]
    table: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for n, (label, latency, limit) in enumerate(settings):
        extra = ["--latency-ms", f"{latency:g}"] + (["--btql-rate-limit", str(limit)] if limit else [])
        runs: dict[str, dict[str, Any]] = {}
        for name in ("ours", "bt"):
            print(f"{name} at {label} ...", file=sys.stderr, flush=True)
            plane = Plane(w.plane_db, extra)
            run_env = {**env, "BRAINTRUST_API_KEY": plane.key, "BRAINTRUST_APP_URL": plane.url}
            dataset = f"Support cases (remote {n} {name})"
            try:
                if name == "ours":
                    cmd = [bt, "datasets", "pipeline", "run", str(args.pipeline), "--start", w.lo, "--end", w.hi,
                           "--no-limit", "--json", "-q", "--target-dataset", dataset]
                    result = measure(launcher, plane, cmd, run_env, w.workdir)
                    summary = json.loads(result["stdout"])
                    rows = len(plane.dataset_ids(summary["dataset_id"]))
                    assert summary["rows"] == rows == w.flagged, ("ours", summary["rows"], rows, w.flagged)
                    result["refused"] = max(0, summary["requests"] - result["requests"])  # its sends the plane never saw
                else:
                    result = bt_pattern(launcher, plane, w, run_env, dataset, args.bt_budget_s if limit else 0.0, limit)
            finally:
                plane.close()
            runs[name] = result
        table.append((label, runs["ours"], runs["bt"]))

    print("remote-like comparison: support-cases (span scope), ours vs bt's request pattern")
    print(f"{w.info['spans']:,} spans seeded ({os.cpu_count()} CPUs: bt's runner batch); window {w.lo} .. {w.hi}: "
          f"{w.spans:,} spans, {w.flagged:,} flagged")
    print(f"{'setting':<26}{'ours s':>9}{'bt s':>10}{'ratio':>9}{'ours req':>10}{'bt req':>10}{'429s ours/bt':>14}")
    for label, o, b in table:
        mark = "*" if b.get("extrapolated") else ""
        print(f"{label:<26}{o['seconds']:>9.1f}{b['seconds']:>9.1f}{mark:1}{b['seconds'] / o['seconds']:>8.1f}x"
              f"{o['requests']:>10,}{b['requests']:>9,}{mark:1}{o['refused']:>7}/{b['refused']:<6}")
    print("(seconds: process wall time, start-up included; req: requests the plane served (429s not included);"
          " bt: discovery pages of refs, one whole-trace /btql per span in runner batches, /logs3 batches of 1000;"
          " bt's runner processes are not started, in its favour)")
    for _, _, b in table:
        if b.get("note"):
            print(f"* {b['note']}")
    for label, o, b in table:
        print(f"requests by route at {label}: ours {', '.join(f'{k} {v}' for k, v in o['routes'].items())}; "
              f"bt {', '.join(f'{k} {v}' for k, v in b['routes'].items())}")
    speedup = table[1][2]["seconds"] / table[1][1]["seconds"]
    met = speedup >= GOAL_REMOTE_SPEEDUP
    print_goals([(f"ours vs bt at {args.latency_ms:g} ms >= {GOAL_REMOTE_SPEEDUP:g}x", f"{speedup:.1f}x", met)])


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--dir", type=Path, help="working directory; keeps seed.db for reruns (default: a temporary one)")
    parser.add_argument("--remote", action="store_true",
                        help="only the remote-like comparison: ours vs bt's request pattern at 0 ms, at --latency-ms, "
                             "and at --latency-ms with --btql-rate-limit")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="remote-like latency (default 50)")
    parser.add_argument("--btql-rate-limit", type=int, default=20, help="remote-like BTQL requests a minute (default 20)")
    parser.add_argument("--bt-budget-s", type=float, default=120.0,
                        help="under the rate limit, stop bt's trace fetches after this many seconds and extrapolate "
                             "(default 120; 0 = run to the end)")
    parser.add_argument("--scope", choices=("span", "trace", "both"), default="both",
                        help="which pipelines to run: support-cases (span scope), llm-call-traces (trace scope), or both")
    parser.add_argument("--pipeline", type=Path, default=PIPELINE, help=argparse.SUPPRESS)
    parser.add_argument("--floor-only", action="store_true", help=argparse.SUPPRESS)  # the floor's subprocess
    for name in ("--db", "--project-id", "--start", "--end", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_only:
        floor_only(args)
        return
    if args.days < 2:
        parser.error("--days must be at least 2 (the half-window run needs whole days)")

    launcher = Launcher()  # first, while this process is small (see Launcher)
    try:
        run(args, launcher)
    finally:
        launcher.close()


@dataclass(frozen=True)
class Scenario:
    """One pipeline the contenders run: its file, transform, source filter (BTQL for the HTTP
    contenders, SQL for the ground truth and the floor) and what a target row stands for."""

    scope: str
    pipeline: Path
    transform: str
    filter_btql: str
    filter_sql: str
    dataset: str
    sdk_script: str
    unit: str


SCENARIOS = {
    "span": Scenario("span", PIPELINE, TRANSFORM, "metadata.flagged = true", FLAGGED, "Support cases", SDK_SCRIPT,
                     "flagged spans"),
    "trace": Scenario("trace", TRACE_PIPELINE, TRACE_TRANSFORM, TRACE_FILTER, CORRECT, "Correct LLM traces",
                      SDK_TRACE_SCRIPT, "traces with a matching span"),
}


def run(args: argparse.Namespace, launcher: Launcher) -> None:
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bt-bench-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    startup = launcher.run([sys.executable, "-c", "pass"])
    end = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    seed_db, info = seeded_db(workdir, project=PROJECT, spans_per_day=max(1, args.spans // args.days), days=args.days,
                              seed=SEED, end=end, match_end=False)  # a 1M-span seed is reused across days
    project_id = info["project_id"]

    # A fresh copy per run, so every contender writes new rows into an untouched file.
    plane_db, floor_db = workdir / "plane.db", workdir / "floor.db"
    for path in [*workdir.glob("plane.db*"), *workdir.glob("floor.db*")]:
        path.unlink()
    for suffix in ("", "-wal"):
        if Path(f"{seed_db}{suffix}").exists():
            shutil.copyfile(f"{seed_db}{suffix}", f"{plane_db}{suffix}")

    start = datetime.fromisoformat(info["start"])
    end = datetime.fromisoformat(info["end"])
    half_end = start + timedelta(days=args.days // 2)
    lo, hi, half_hi = iso(start), iso(end), iso(half_end)
    # Counting also reads every page of the window once, so no contender pays for a cold cache alone.
    spans, flagged = count_window(plane_db, project_id, lo, hi)
    half_spans, _ = count_window(plane_db, project_id, lo, half_hi)
    assert flagged > 0, "no flagged spans in the window: seed more spans"

    bt = str(Path(sys.executable).parent / "bt-dagster")
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINTRUST_API_URL", "BRAINTRUST_ORG_NAME", "BT_LOCAL_DB")}
    if args.remote:
        try:
            remote_comparison(args, launcher, Window(workdir, info, project_id, plane_db, lo, hi, spans, flagged), env, bt)
        finally:
            cleanup(args, workdir)
        return
    plane = Plane(plane_db)
    env.update(BRAINTRUST_API_KEY=plane.key, BRAINTRUST_APP_URL=plane.url)
    size_mb = sum(p.stat().st_size for p in workdir.glob("seed.db*")) / 1e6
    print(f"{info['spans']:,} spans seeded over {args.days} days (db {size_mb:,.0f} MB, {os.cpu_count()} CPUs); window {lo} .. {hi}:"
          f" {spans:,} spans; first half: {half_spans:,} spans")
    print(f"(rows/s, seconds: process wall time, start-up included; `python -c pass`: {startup['seconds']:.2f} s,"
          f" {startup['maxrss_kib'] * 1024 / 1e6:.0f} MB)")
    try:
        for scope in (["span", "trace"] if args.scope == "both" else [args.scope]):
            scenario = SCENARIOS[scope]
            expected = count_matching(plane_db, project_id, lo, hi, scenario.filter_sql, scope)
            half_expected = count_matching(plane_db, project_id, lo, half_hi, scenario.filter_sql, scope)
            assert expected > 0 and half_expected > 0, f"nothing matches {scenario.filter_btql!r} in the window"
            results = run_scenario(args, launcher, plane, scenario, env, bt, workdir, project_id,
                                   (lo, hi, half_hi), (expected, half_expected), floor_db)
            report(scenario, results, spans, half_spans, expected, half_expected)
        read_rows, read_pages, read_seconds = plane.read_flagged(project_id, lo, hi)
        assert read_rows == flagged, ("read", read_rows, flagged)
        print(f"\nreading the flagged spans alone through /btql (this process, rows decoded, no transform or write):"
              f" {read_seconds:.1f} s, {read_pages} pages, {read_rows / read_seconds:,.0f} rows/s")
    finally:
        plane.close()
    cleanup(args, workdir)


def run_scenario(args: argparse.Namespace, launcher: Launcher, plane: Plane, scenario: Scenario, env: dict[str, str],
                 bt: str, workdir: Path, project_id: str, bounds: tuple[str, str, str], expected: tuple[int, int],
                 floor_db: Path) -> dict[str, dict[str, Any]]:
    """The four runs of one scenario (ours over the window and its first half, the SDK script, the
    floor), each checked against the ground truth."""
    lo, hi, half_hi = bounds
    results: dict[str, dict[str, Any]] = {}

    def ours(name: str, dataset: str, window_hi: str, want: int) -> None:
        cmd = [bt, "datasets", "pipeline", "run", str(scenario.pipeline), "--start", lo, "--end", window_hi,
               "--no-limit", "--json", "-q", "--target-dataset", dataset]
        result = measure(launcher, plane, cmd, env, workdir)
        summary = json.loads(result["stdout"])
        result["rows"] = len(plane.dataset_ids(summary["dataset_id"]))
        result["client_requests"] = summary["requests"]
        assert summary["rows"] == result["rows"] == want, (name, summary["rows"], result["rows"], want)
        results[name] = result

    print(f"{scenario.scope} scope: ours over the whole window ...", file=sys.stderr, flush=True)
    ours("ours", f"{scenario.dataset} (bench ours)", hi, expected[0])
    print(f"{scenario.scope} scope: ours over the first half of the window ...", file=sys.stderr, flush=True)
    ours("ours N/2", f"{scenario.dataset} (bench ours, half)", half_hi, expected[1])

    print(f"{scenario.scope} scope: the SDK script ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, "-c", scenario.sdk_script, str(scenario.pipeline), scenario.transform, PROJECT,
           f"{scenario.dataset} (bench sdk)", lo, hi]
    if scenario.scope == "trace":
        cmd.append(scenario.filter_btql)
    result = measure(launcher, plane, cmd, env, workdir)
    out = json.loads(result["stdout"].strip().splitlines()[-1])
    result["rows"] = len(plane.dataset_ids(out["dataset_id"]))
    assert out["rows"] == result["rows"] == expected[0], ("sdk", out["rows"], result["rows"], expected[0])
    results["sdk"] = result

    print(f"{scenario.scope} scope: the raw SQLite floor ...", file=sys.stderr, flush=True)
    for path in floor_db.parent.glob(floor_db.name + "*"):
        path.unlink()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--floor-only", "--scope", scenario.scope,
           "--pipeline", str(scenario.pipeline), "--db", str(plane.db), "--project-id", project_id,
           "--start", lo, "--end", hi, "--out", str(floor_db)]
    result = measure(launcher, plane, cmd, env, workdir)
    result["inner_seconds"] = json.loads(result["stdout"])["seconds"]
    conn = sqlite3.connect(floor_db)
    (result["rows"],) = conn.execute("SELECT count(*) FROM cases").fetchone()
    conn.close()
    assert result["rows"] == expected[0], ("floor", result["rows"], expected[0])
    results["floor"] = result
    return results


def report(scenario: Scenario, results: dict[str, dict[str, Any]], spans: int, half_spans: int,
           expected: int, half_expected: int) -> None:
    print(f"\n{scenario.pipeline.stem} ({scenario.scope} scope, filter {scenario.filter_btql}): "
          f"{expected:,} {scenario.unit} in the window, {half_expected:,} in its first half")
    print(f"{'contender':<10}{'spans':>11}{'rows':>9}{'requests':>10}{'req/1000 rows':>15}{'rows/s':>10}"
          f"{'peak RSS MB':>13}{'seconds':>9}")
    window_spans = {"ours N/2": half_spans}
    for name in ("ours", "ours N/2", "sdk", "floor"):
        r = results[name]
        r["per_1k"] = 1000 * r["requests"] / r["rows"]
        r["rate"] = r["rows"] / r["seconds"]
        r["rss_mb"] = r["maxrss_kib"] * 1024 / 1e6
        print(f"{name:<10}{window_spans.get(name, spans):>11,}{r['rows']:>9,}{r['requests']:>10,}{r['per_1k']:>15.2f}"
              f"{r['rate']:>10,.0f}{r['rss_mb']:>13.0f}{r['seconds']:>9.1f}")
    print(f"(req/1000 rows: plane-side requests per 1000 target rows; the floor's own loop {results['floor']['inner_seconds']:.1f} s)")
    for name in ("ours", "sdk"):
        routes = ", ".join(f"{k} {v}" for k, v in results[name]["routes"].items())
        print(f"requests by route, {name}: {routes}")
    print(f"ours' own count of its requests: {results['ours']['client_requests']} (the plane counted {results['ours']['requests']})")

    ours_r, sdk_r, floor_r, half_r = results["ours"], results["sdk"], results["floor"], results["ours N/2"]
    speedup = sdk_r["seconds"] / ours_r["seconds"]
    vs_floor = ours_r["seconds"] / floor_r["seconds"]
    rss_ratio = ours_r["maxrss_kib"] / half_r["maxrss_kib"]
    extra_rows = ours_r["rows"] - half_r["rows"]
    per_row = 1024 * (ours_r["maxrss_kib"] - half_r["maxrss_kib"]) / extra_rows if extra_rows > 0 else 0.0
    goals = [
        (f"ours vs SDK script speed-up >= {GOAL_SDK_SPEEDUP:g}x", f"{speedup:.2f}x", speedup >= GOAL_SDK_SPEEDUP),
        (f"ours within {GOAL_FLOOR_RATIO:g}x of the raw floor", f"{vs_floor:.2f}x", vs_floor <= GOAL_FLOOR_RATIO),
        (f"peak RSS flat as N doubles (N vs N/2 <= {GOAL_RSS_RATIO:.2f}x)",
         f"{ours_r['rss_mb']:.0f} / {half_r['rss_mb']:.0f} MB = {rss_ratio:.2f}x", rss_ratio <= GOAL_RSS_RATIO),
    ]
    print_goals(goals, title=f"goal ({scenario.scope} scope)")
    print(f"(peak RSS, whole window minus half window: {per_row:+,.0f} bytes per extra dataset row)")


def cleanup(args: argparse.Namespace, workdir: Path) -> None:
    for path in [*workdir.glob("plane.db*"), *workdir.glob("floor.db*")]:
        path.unlink()
    if not args.dir:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
