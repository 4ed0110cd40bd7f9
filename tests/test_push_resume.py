"""A push killed with SIGKILL at random points resumes to exactly the input: nothing lost, nothing doubled.

Each attempt is a real subprocess pushing one file of a few thousand rows in small batches into the
local plane's SQLite file. Half the attempts are killed by the parent after a random delay (any
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

from pipelines_repo.backend import open_client
from pipelines_repo.engine.rows import RowPreparer

ROWS = 4000
BATCH_ROWS = 20
KILLS = 12

PUSH_SCRIPT = r"""
import json, os, signal, sys
from pipelines_repo.backend import open_client
from pipelines_repo.engine.push import push_file
from pipelines_repo.engine.spec import TargetSpec

path, root, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
commits = 0

def on_commit(state):
    global commits
    commits += 1
    if kill_after and commits >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

with open_client() as client:
    print("ready", flush=True)
    result = push_file(client, path, TargetSpec(project_name="resume", dataset_name="killed"), root=root,
                       batch_rows=%d, max_workers=3, on_commit=on_commit)
    print(json.dumps(result.to_dict()), flush=True)
""" % BATCH_ROWS


def make_input(path: Path, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(ROWS):
        if i % 30 == 7:  # id-less rows: deterministic ids from their origin, stable across processes
            row = {"input": {"i": i}, "origin": {"id": f"src-{i}", "object_id": "p", "object_type": "project_logs"}}
        else:
            row = {"id": f"row-{i:05d}", "input": {"i": i, "text": "x" * rng.randint(0, 200)}, "expected": i,
                   "metadata": {"k": i % 7}, "tags": [f"t{i % 3}"]}
        rows.append(row)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def state_of(root: Path) -> dict | None:
    found = list(root.glob("dataset_*/*/state.json"))
    assert len(found) <= 1
    return json.loads(found[0].read_text()) if found else None


def start_push(path: Path, root: Path, kill_after: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", PUSH_SCRIPT, str(path), str(root), str(kill_after)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc


def test_push_killed_anywhere_resumes_to_exactly_the_input(isolated_home, tmp_path) -> None:
    rng = random.Random(int(os.environ.get("PUSH_RESUME_SEED", "20240607")))
    source = tmp_path / "transformed.jsonl"
    rows = make_input(source, rng)
    root = tmp_path / "bt-sync"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    kills = 0
    attempts = 0
    previous_done = 0
    while kills < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"only {kills} kills landed in {attempts} attempts"
        if attempts % 2:
            proc = start_push(source, root, 0, env)
            time.sleep(rng.uniform(0.0, 0.25))
            proc.send_signal(signal.SIGKILL)
        else:
            proc = start_push(source, root, rng.randint(1, 8), env)
        proc.wait(timeout=60)
        out, err = proc.communicate()
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0, err
        state = state_of(root)
        if state is not None:
            assert state["items_done"] >= previous_done  # the committed offset never goes back
            previous_done = state["items_done"]
            if state["status"] == "completed":
                break  # the push finished before the kill; resuming would be a no-op

    # Resume through a copy at another path: the checkpoint is keyed by content, not path.
    copy = tmp_path / "elsewhere.jsonl"
    copy.write_bytes(source.read_bytes())
    final = start_push(copy, root, 0, env)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] in ("completed", "already_completed")
    assert result["rows_resumed"] + result["rows_pushed"] == ROWS or result["status"] == "already_completed"
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
    assert state_of(root)["status"] == "completed"
