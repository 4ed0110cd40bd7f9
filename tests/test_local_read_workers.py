"""A served plane answers /btql in reader processes: fresh reads, the same errors, no orphans."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import start_plane, stop_plane


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(c) for c in text)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def _query(project_id: str, text: str) -> dict:
    return {"query": {"select": [{"op": "star"}], "filter": {"btql": text},
                      "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                               "args": [{"op": "literal", "value": project_id}]}}}


@pytest.mark.parametrize("readers", ["1", "0"])
def test_every_write_is_seen_by_the_next_query_and_errors_keep_their_status(tmp_path, readers) -> None:
    plane = start_plane(tmp_path / "plane.db", extra_args=["--read-workers", readers])
    try:
        with plane.client() as http:
            project = http.post("/v1/project", json={"name": "rw"}).json()
            for i in range(20):
                http.post("/logs3", json={"rows": [{"id": f"s{i}", "project_id": project["id"], "log_id": "g",
                                                    "input": i}]}).raise_for_status()
                rows = http.post("/btql", json=_query(project["id"], f"input = {i}")).json()["data"]
                assert [r["id"] for r in rows] == [f"s{i}"]  # read right after the write's response
            body = _query(project["id"], "input = 1")
            body["query"]["sort"] = [{"expr": {"op": "ident", "name": ["input"]}, "dir": "desc"}]
            bad = http.post("/btql", json=body)
            assert bad.status_code == 400 and "sort by one of" in bad.json()["message"]
            missing = http.post("/btql", json=_query("no-such-project", "input = 1"))  # the store's own NotFound
            assert missing.status_code == 404
        if readers == "1":
            assert len(_children(plane.process.pid)) >= 1  # the reader (and multiprocessing's tracker)
    finally:
        stop_plane(plane)


def test_readers_end_with_a_killed_server(tmp_path) -> None:
    plane = start_plane(tmp_path / "plane.db")
    try:
        with plane.client() as http:
            project = http.post("/v1/project", json={"name": "rw"}).json()
            http.post("/btql", json=_query(project["id"], "input = 1")).raise_for_status()
        children = _children(plane.process.pid)
        assert children
        plane.process.send_signal(signal.SIGKILL)
        plane.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "a reader outlived its server"
    finally:
        if plane.process.poll() is None:
            stop_plane(plane)


def test_readers_of_a_server_stopped_while_they_start_do_not_linger(tmp_path) -> None:
    """Start and stop planes at once (their readers are still spawning), then look for readers
    whose server is gone."""
    def orphans() -> set[int]:
        found = set()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
                ppid = int((proc / "stat").read_text().split(") ", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if "multiprocessing.spawn" in cmd and str(tmp_path) not in cmd and ppid == 1 and _alive(int(proc.name)):
                found.add(int(proc.name))
        return found

    before = orphans()
    for i in range(3):
        plane = start_plane(tmp_path / f"plane{i}.db")
        plane.process.send_signal(signal.SIGKILL)
        plane.process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and orphans() - before:
        time.sleep(0.3)
    assert not orphans() - before
