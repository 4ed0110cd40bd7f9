"""A push killed with SIGKILL at random points resumes to exactly the input: nothing lost, nothing doubled.

Each attempt is a real subprocess pushing one file of a few thousand rows in small batches into the
local plane's SQLite file (or, as a Dagster backfill does, several partition files whose rows
share batches, each with its own checkpoint). Half the attempts are killed by the parent after a random delay (any
point: mid-request, mid-commit, mid-state-write), half kill themselves right after the k-th
committed batch. The final run resumes from the content-keyed checkpoint (through a copy of the
file at another path) and the dataset read back equals the input.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines_repo.backend import open_client
from pipelines_repo.engine.rows import RowPreparer

ROWS = 4000
BATCH_ROWS = 20
KILLS = 12

PUSH_SCRIPT = r"""
import json, os, signal, sys
from pipelines_repo.backend import open_client
from pipelines_repo.engine.push import push_file, push_files
from pipelines_repo.engine.spec import TargetSpec

root, kill_after, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
commits = 0

def on_commit(state):
    global commits
    commits += 1
    if kill_after and commits >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

with open_client() as client:
    print("ready", flush=True)
    target = TargetSpec(project_name="resume", dataset_name="killed")
    if len(paths) == 1:
        results = [push_file(client, paths[0], target, root=root, batch_rows=%d, max_workers=3, on_commit=on_commit)]
    else:
        results = push_files(client, paths, target, root=root, batch_rows=%d, max_workers=3,
                             on_commit=on_commit).files
    print(json.dumps([r.to_dict() for r in results]), flush=True)
""" % (BATCH_ROWS, BATCH_ROWS)


def make_rows(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        if i % 30 == 7:  # id-less rows: deterministic ids from their origin, stable across processes
            row = {"input": {"i": i}, "origin": {"id": f"src-{i}", "object_id": "p", "object_type": "project_logs"}}
        else:
            row = {"id": f"row-{i:05d}", "input": {"i": i, "text": "x" * rng.randint(0, 200)}, "expected": i,
                   "metadata": {"k": i % 7}, "tags": [f"t{i % 3}"]}
        rows.append(row)
    return rows


def write_inputs(directory: Path, rows: list[dict], cuts: list[int]) -> list[Path]:
    """``rows`` split at ``cuts`` into files (an empty one included when two cuts coincide)."""
    paths = []
    for n, (lo, hi) in enumerate(zip([0, *cuts], [*cuts, len(rows)], strict=True)):
        path = directory / f"part-{n}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows[lo:hi]))
        paths.append(path)
    return paths


def states_of(root: Path) -> dict[str, dict]:
    """Checkpoint states by checkpoint directory (one per input content)."""
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("dataset_*/*/state.json")}


def start_push(paths: list[Path], root: Path, kill_after: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", PUSH_SCRIPT, str(root), str(kill_after), *map(str, paths)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


@pytest.mark.parametrize("cuts", [[], [900, 900, 2100, 3950]], ids=["one-file", "five-partitions"])
def test_push_killed_anywhere_resumes_to_exactly_the_input(isolated_home, tmp_path, cuts) -> None:
    rng = random.Random(int(os.environ.get("PUSH_RESUME_SEED", "20240607")))
    rows = make_rows(rng)
    (tmp_path / "in").mkdir()
    sources = write_inputs(tmp_path / "in", rows, cuts)
    root = tmp_path / "bt-sync"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    kills = 0
    attempts = 0
    previous_done: dict[str, int] = {}
    while kills < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"only {kills} kills landed in {attempts} attempts"
        if attempts % 2:
            proc = start_push(sources, root, 0, env)
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        else:
            proc = start_push(sources, root, rng.randint(1, 8), env)
        proc.wait(timeout=60)
        out, err = proc.communicate()
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0, err
        states = states_of(root)
        for key, state in states.items():
            assert state["items_done"] >= previous_done.get(key, 0)  # a committed offset never goes back
            previous_done[key] = state["items_done"]
        if len(states) == len(sources) and all(s["status"] == "completed" for s in states.values()):
            break  # the push finished before the kill; resuming would be a no-op

    # Resume through copies at other paths: checkpoints are keyed by content, not path.
    (tmp_path / "elsewhere").mkdir()
    copies = []
    for source in sources:
        copy = tmp_path / "elsewhere" / source.name
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    final = start_push(copies, root, 0, env)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    results = json.loads(out.strip().splitlines()[-1])
    for result, source in zip(results, sources, strict=True):
        lines = sum(1 for line in source.read_text().splitlines() if line.strip())
        assert result["status"] in ("completed", "already_completed")
        # rows an interrupted upload sent before its commit are found unchanged (change-aware push)
        done = result["rows_resumed"] + result["rows_pushed"] + result["unchanged"]
        assert done == lines or result["status"] == "already_completed"
    assert kills >= 10

    preparer = RowPreparer()
    expected = {}
    for row in rows:
        prepared = preparer.prepare(row)
        expected[prepared["id"]] = prepared
    with open_client() as client:
        project = client.get_project(name="resume")
        dataset = client.find_dataset(project["id"], "killed")
        fetched = list(client.fetch_dataset(dataset["id"]))
    assert len(fetched) == ROWS  # none doubled
    got = {row["id"]: row for row in fetched}
    assert set(got) == set(expected)  # none lost
    for row_id, want in expected.items():
        assert {k: got[row_id].get(k) for k in want} == want
    states = states_of(root)
    assert len(states) == len(sources) and {s["status"] for s in states.values()} == {"completed"}
