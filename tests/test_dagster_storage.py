"""The instance storage in dagster_home/dagster.yaml: Dagster's SQLite files, kept-open connections.

Users rely on it being Dagster's storage in every way they can see: the same files (so an existing
$DAGSTER_HOME keeps its history, and dropping the `storage:` block goes back without loss), runs and
materializations readable by stock Dagster, and a webserver's live run view that still sees events
written by another process (the run worker).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.utils import make_new_run_id

from helpers import REPO
from pipelines_repo.orchestration.sqlite_storage import (
    OPEN_RUN_SHARDS,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
    PooledSqliteStorage,
)



def make_home(path: Path, *, stock: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    if stock:
        config.pop("storage")
    (path / "dagster.yaml").write_text(yaml.safe_dump(config))
    return path


DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-11")


@dg.asset(partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
def windows(context):  # unannotated: annotations are strings here (__future__)
    for key in context.partition_keys:
        context.add_asset_metadata({"day": key}, partition_key=key)
    return dg.MaterializeResult()


def materialize_range(instance: dg.DagsterInstance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [windows], instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = make_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_repo_yaml_selects_pooled_storage_in_dagsters_file_layout(home: Path) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # Run workers rebuild the instance from its ref: they get the pooled storage too.
        assert instance.get_ref().storage_data.class_name == PooledSqliteStorage.__name__
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert isinstance(instance.run_storage, PooledSqliteRunStorage)
        result = materialize_range(instance, "2026-01-01", "2026-01-10")
        assert result.success
        run_id = result.run_id
    history = home / "history"
    assert (history / "runs.db").is_file()
    assert (history / "runs" / "index.db").is_file()
    assert (history / "runs" / f"{run_id}.db").is_file()
    assert (home / "schedules" / "schedules.db").is_file()


def test_history_survives_switching_between_pooled_and_stock_storage(tmp_path: Path, monkeypatch) -> None:
    pooled = make_home(tmp_path / "home")
    monkeypatch.setenv("DAGSTER_HOME", str(pooled))
    with dg.DagsterInstance.from_config(str(pooled)) as instance:
        first_run = materialize_range(instance, "2026-01-01", "2026-01-05").run_id

    # The same directory without the storage block: stock Dagster reads what the pooled one wrote.
    make_home(pooled, stock=True)
    with dg.DagsterInstance.from_config(str(pooled)) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert instance.get_run_by_id(first_run).is_success
        assert instance.get_materialized_partitions(windows.key) == {f"2026-01-0{d}" for d in range(1, 6)}
        second_run = materialize_range(instance, "2026-01-06", "2026-01-10").run_id

    # And back: the pooled storage reads both runs and every partition's own metadata.
    make_home(pooled)
    with dg.DagsterInstance.from_config(str(pooled)) as instance:
        assert {r.run_id for r in instance.get_runs()} == {first_run, second_run}
        assert len(instance.get_materialized_partitions(windows.key)) == 10
        records = instance.fetch_materializations(windows.key, limit=100).records
        days = sorted(r.asset_materialization.metadata["day"].value for r in records)
        assert days == [f"2026-01-{d:02d}" for d in range(1, 11)]


WRITER = """
import sys, time
import dagster as dg
instance = dg.DagsterInstance.get()
run = instance.get_run_by_id(sys.argv[1])
for i in range(int(sys.argv[2])):
    instance.report_engine_event(f"event {i}", run)
    time.sleep(0.05)
"""


def test_live_run_view_sees_events_another_process_writes(home: Path) -> None:
    """The webserver's run page follows a run by watching its shard file (watchdog); the run worker
    writes the events in another process through kept-open connections."""
    count = 12
    received: list[str] = []
    all_seen = threading.Event()

    def on_event(entry, _cursor):
        if entry.message.startswith("event "):
            received.append(entry.message)
            if len(received) == count:
                all_seen.set()

    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.add_run(dg.DagsterRun(job_name="watched", run_id=make_new_run_id()))
        instance.report_engine_event("created", run)  # the shard exists before the watch starts
        instance.event_log_storage.watch(run.run_id, None, on_event)
        try:
            env = {**os.environ, "DAGSTER_HOME": str(home)}
            proc = subprocess.run([sys.executable, "-c", WRITER, run.run_id, str(count)], env=env,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert all_seen.wait(timeout=20), f"the watcher saw {len(received)} of {count} events"
        finally:
            instance.event_log_storage.end_watch(run.run_id, on_event)
    assert received[-1] == f"event {count - 1}"
    assert len(set(received)) == count


def test_open_run_shards_are_bounded_and_wipe_starts_clean(home: Path) -> None:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = [instance.add_run(dg.DagsterRun(job_name="many", run_id=make_new_run_id()))
                for _ in range(OPEN_RUN_SHARDS + 4)]
        for run in runs:
            instance.report_engine_event("hello", run)
        storage = instance.event_log_storage
        open_shards = [s for s in storage._engine_cache._engines if s != "index"]
        assert len(open_shards) == OPEN_RUN_SHARDS
        # Disposed engines reopen on demand: every run's events are still there.
        for run in runs:
            assert [r.event_log_entry.message for r in storage.get_records_for_run(run.run_id).records] == ["hello"]

        instance.wipe()
        assert not list((home / "history" / "runs").glob("*-*.db"))
        assert materialize_range(instance, "2026-01-01", "2026-01-02").success
        assert instance.get_materialized_partitions(windows.key) == {"2026-01-01", "2026-01-02"}


def test_concurrent_readers_never_wait_for_the_pooled_connection(home: Path) -> None:
    """The webserver reads run storage from many request threads at once."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.add_run(dg.DagsterRun(job_name="busy", run_id=make_new_run_id()))
        barrier = threading.Barrier(12)
        errors: list[BaseException] = []

        def read() -> None:
            try:
                with instance.run_storage.connect() as conn:  # hold one connection while the others open theirs
                    barrier.wait(timeout=20)
                    conn.exec_driver_sql("SELECT 1")
                assert instance.get_run_by_id(run.run_id) is not None
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
