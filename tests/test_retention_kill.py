"""Retention apply killed with a real SIGKILL mid-delete, run again, ends like one uninterrupted run.

The plane file is seeded as in test_retention.py (40 days, a 30-day policy) and copied. The copy
gets one uninterrupted ``bt-dagster retention apply logs-30d --force --batch-size 5`` (the
reference). On the original the same command runs in a subprocess that the test SIGKILLs once
the SQLite file (read through a read-only connection) shows some but not all expired rows gone;
that is repeated at a few points, then once more right after the last tombstone (before the purge),
then one run goes to completion. The final file must hold exactly
what the reference holds: no version of an expired row, every other row byte for byte, and a file
no larger than the reference's (plus a small margin).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, write_pipeline
from test_retention import CUTOFF_TEXT, EXPIRED, POLICY, PROJECT, SPANS_PER_DAY, file_size, project_pk, snapshot
from test_retention import plane  # noqa: F401 - the fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

BATCH = 5  # 400 expired rows -> 80 delete batches
TOTAL = SPANS_PER_DAY * len(EXPIRED)
KILL_AT = (0.2, 0.55, 0.9)  # fraction of the expired rows gone when the kill is sent
SIZE_MARGIN = 64 * 1024


def apply_command(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines_repo.cli.main", "retention", "apply", "logs-30d", "--force", "--batch-size", str(BATCH)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def expired_live(db: Path, obj: int) -> int:
    """Expired head rows still live, read through a read-only connection (the writer keeps going)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM rows WHERE obj=? AND head=1 AND deleted=0 AND created < ?", (obj, CUTOFF_TEXT)).fetchone()
    finally:
        conn.close()
    return n


def test_retention_apply_killed_by_sigkill_converges(plane: tuple[Path, str], tmp_path: Path) -> None:  # noqa: F811
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=""))
    twin = tmp_path / "twin.db"
    with sqlite3.connect(db) as conn:  # a consistent copy of the seeded file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db, twin)
    obj = project_pk(db, project_id)
    before = snapshot(db, project_id)
    kept = {rid: v for rid, v in before["live"].items() if v[0] >= CUTOFF_TEXT}
    assert expired_live(db, obj) == TOTAL and len(kept) == len(before["live"]) - TOTAL

    base = {k: v for k, v in os.environ.items() if not k.startswith("BRAINTRUST_")}
    base |= {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "PIPELINES_DIR": str(folder)}
    base["DAGSTER_HOME"] = os.environ["DAGSTER_HOME"]

    reference = apply_command({**base, "BT_LOCAL_DB": str(twin)})
    out, err = reference.communicate(timeout=120)
    assert reference.returncode == 0, err
    assert f"deleted {TOTAL} row(s)" in out
    want = snapshot(twin, project_id)
    assert want["live"] == kept and want["old_versions"] == 0

    env = {**base, "BT_LOCAL_DB": str(db)}
    gone_at_kill = []
    for fraction in KILL_AT:
        proc = apply_command(env)
        deadline = time.monotonic() + 60
        while True:
            left = expired_live(db, obj)
            if left <= TOTAL * (1 - fraction):
                break
            assert proc.poll() is None, f"apply exited ({proc.returncode}) before the kill point: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, "apply made no progress"
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        left = expired_live(db, obj)
        assert 0 < left < TOTAL, f"the kill at {fraction:.0%} did not land mid-delete ({left} of {TOTAL} left)"
        gone_at_kill.append(TOTAL - left)
        partial = snapshot(db, project_id)
        assert {k: v for k, v in partial["live"].items() if v[0] >= CUTOFF_TEXT} == kept  # kept rows never touched
    assert gone_at_kill == sorted(gone_at_kill) and len(set(gone_at_kill)) == len(KILL_AT)

    # Once more, killed as soon as the last expired row is tombstoned: before (or during) the purge.
    proc = apply_command(env)
    while expired_live(db, obj) > 0 and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGKILL), err
    unpurged = snapshot(db, project_id)["old_versions"]  # originals + tombstones, if the kill beat the purge
    assert expired_live(db, obj) == 0

    final = apply_command(env)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert "deleted 0 row(s)" in out  # nothing left to tombstone: the run only purges

    got = snapshot(db, project_id)
    assert got["live"] == kept  # every other row byte for byte
    assert got["old_versions"] == 0  # no version (nor tombstone) of an expired row left after the purge
    assert got == want
    print(f"expired rows gone at each kill: {gone_at_kill}; unpurged versions at the last kill: {unpurged}; "
          f"file {file_size(db)} bytes, reference {file_size(twin)}")
    assert file_size(db) <= file_size(twin) + SIZE_MARGIN
