"""The code location on Dagster's Postgres storage (a real PostgreSQL server, tests/pg_server.py).

The instance comes from dagster_home/dagster.postgres.yaml as checked in (its URL from
$DAGSTER_PG_URL), one fresh database per test; the data plane is the embedded local one, seeded
like tests/test_dagster_materialize.py. Concurrent runs are separate `dagster asset materialize`
processes sharing the Postgres instance and the local plane's SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from helpers import EXAMPLES, REPO
from pipelines_repo.orchestration import build_definitions
from pg_server import PostgresServer, pg_server  # noqa: F401 - the session fixture
from test_dagster_automation import Home, tick
from test_dagster_materialize import Plane, expected_support_cases, materialize

pytest.importorskip("dagster_postgres", reason="needs the postgres extra: pip install -e '.[postgres]'")

# dagster-postgres 0.29.27 (the newest) next to dagster 1.13.28 warns about the version skew.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

DATASET = "Support cases"
PIPELINE = "support_cases"


@pytest.fixture
def pg_home(isolated_home: Path, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """$DAGSTER_HOME with the checked-in Postgres dagster.yaml, pointed at a fresh database."""
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.postgres.yaml").read_text())
    (isolated_home / "dagster.yaml").write_text(yaml.safe_dump(config))
    url = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    return isolated_home


@pytest.fixture
def pg_instance(pg_home: Path):
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    with dg.DagsterInstance.from_config(str(pg_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        yield instance


def dataset_ids(db: Path, name: str) -> list[str]:
    """Every row id the dataset holds (duplicates kept, so they can be counted)."""
    from pipelines_repo.backend import open_client
    from pipelines_repo.settings import ApiSettings

    with open_client(ApiSettings(), local_db=db) as client:
        project = client.get_project(name="Customer Support")
        found = client.find_dataset(project["id"], name)
        return [row["id"] for row in client.fetch_dataset(found["id"])] if found else []


def start_materialize(home: Path, first: str, last: str) -> subprocess.Popen:
    """`dagster asset materialize` of the pipeline over first...last, as its own process."""
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BT_LOCAL_DB": str(home / "braintrust-local.db"),
        "PIPELINES_DIR": str(EXAMPLES),
        "PYTHONPATH": str(REPO),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    cmd = [
        sys.executable, "-m", "dagster", "asset", "materialize", "-f", "definitions.py",
        "--select", f'key:"{PIPELINE}/*"',
        *(["--partition", first] if first == last else ["--partition-range", f"{first}...{last}"]),
    ]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def create_pool_row(instance: dg.DagsterInstance) -> None:
    """Create the pool's limit row before two runs race to: on a fresh database, two runs that
    first use a pool at the same moment both insert its default-limit row, and the loser's step
    fails on the unique key (Dagster 1.13). Deployments do this once: the first run, or
    `dagster instance concurrency set braintrust_api <n>`."""
    from pipelines_repo.orchestration.assets import POOL

    instance.event_log_storage.initialize_concurrency_limit_to_default(POOL)


def wait_all(procs: list[subprocess.Popen]) -> list[str]:
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-4000:]
        outputs.append(out)
    return outputs


def assert_dataset(plane: Plane, first: str, last: str) -> None:
    ids = dataset_ids(plane.db, DATASET)
    expected = expected_support_cases(plane, first, last)
    assert [i for i, n in Counter(ids).items() if n > 1] == [], "no duplicate ids"
    assert set(ids) == set(expected), "no lost rows, no extra rows"
    rows, _ = plane.dataset(DATASET)
    assert rows == expected


# -- in-process runs on the Postgres instance --------------------------------------------------------


def test_thirty_partition_backfill_is_one_run(pg_home: Path, pg_instance: dg.DagsterInstance) -> None:
    plane = Plane(pg_home)
    defs = build_definitions(EXAMPLES)
    first, last = plane.day(30), plane.day(1)
    result = materialize(defs, PIPELINE, pg_instance, first=first, last=last)
    assert result.success
    assert_dataset(plane, first, last)
    keys = {plane.day(n) for n in range(30, 0, -1)}
    for stage in ("pulled_refs", "transformed_rows", "dataset_version"):
        assert set(pg_instance.get_materialized_partitions(dg.AssetKey([PIPELINE, stage]))) == keys
    assert len(pg_instance.get_runs()) == 1


def test_schedule_tick_runs_the_last_closed_window(pg_home: Path, pg_instance: dg.DagsterInstance) -> None:
    plane = Plane(pg_home)
    defs = build_definitions(EXAMPLES)
    schedule = defs.get_schedule_def(f"{PIPELINE}_nightly")
    at = plane.end + timedelta(hours=2)
    with dg.build_schedule_context(instance=pg_instance, scheduled_execution_time=at) as ctx:
        requests = schedule.evaluate_tick(ctx).run_requests
    assert [r.partition_key for r in requests] == [plane.day(1)]
    job = defs.resolve_job_def(schedule.job_name)
    result = job.execute_in_process(partition_key=requests[0].partition_key, instance=pg_instance, tags=requests[0].tags)
    assert result.success
    assert_dataset(plane, plane.day(1), plane.day(1))
    assert pg_instance.get_materialized_partitions(dg.AssetKey([PIPELINE, "dataset_version"])) == {plane.day(1)}


def test_sensor_tick_requests_the_late_window(pg_home: Path, pg_instance: dg.DagsterInstance) -> None:
    home = Home(pg_home)
    try:
        defs = build_definitions(EXAMPLES)
        pushed = home.day(2)
        assert materialize(defs, PIPELINE, pg_instance, partition=pushed).success
        first = tick(defs, pg_instance, None)
        assert first.run_requests == [] and first.cursor
        late_id = home.log_span(home.today - timedelta(days=2) + timedelta(hours=5))
        late = tick(defs, pg_instance, first.cursor)
        assert [r.partition_key for r in late.run_requests] == [pushed]
        assert late.run_requests[0].run_key == f"{pushed}:{late.cursor}"
        # The requested run, on the same instance, brings the late span into the dataset.
        assert materialize(defs, PIPELINE, pg_instance, partition=pushed).success
        assert late_id in dataset_ids(home.db, DATASET)
    finally:
        home.http.close()


# -- concurrent runs: separate processes, one Postgres instance, one local-plane file ----------------


def test_concurrent_runs_on_different_partitions_write_one_dataset(pg_home: Path, pg_instance: dg.DagsterInstance) -> None:
    plane = Plane(pg_home)
    create_pool_row(pg_instance)
    started = time.monotonic()
    procs = [start_materialize(pg_home, plane.day(10), plane.day(6)), start_materialize(pg_home, plane.day(5), plane.day(1))]
    wait_all(procs)
    assert_dataset(plane, plane.day(10), plane.day(1))
    runs = pg_instance.get_runs()
    assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), time.monotonic() - started
    keys = {plane.day(n) for n in range(10, 0, -1)}
    assert set(pg_instance.get_materialized_partitions(dg.AssetKey([PIPELINE, "dataset_version"]))) == keys


def test_concurrent_runs_of_the_same_partitions_both_succeed_without_duplicates(
    pg_home: Path, pg_instance: dg.DagsterInstance
) -> None:
    plane = Plane(pg_home)
    first, last = plane.day(5), plane.day(1)
    create_pool_row(pg_instance)
    wait_all([start_materialize(pg_home, first, last), start_materialize(pg_home, first, last)])
    assert_dataset(plane, first, last)
    runs = pg_instance.get_runs()
    assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
