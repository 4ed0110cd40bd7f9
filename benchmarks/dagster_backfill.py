"""Benchmark: a 365-partition Dagster backfill beside `bt-dagster datasets pipeline run` over the same window.

    nice python benchmarks/dagster_backfill.py [--spans-per-day 300] [--days 365] [--dir DIR]
                                               [--no-dagster-cli] [--no-floor] [--profile]

Set-up, in a temporary directory (or `--dir`, which also keeps the seeded plane for reruns):
`home/` is DAGSTER_HOME with the repo's `dagster_home/dagster.yaml` copied in, and its local plane
`home/braintrust-local.db` is a fresh copy of `seed.db`: `--days` days of demo logs
(`generate_demo_logs`, comments included) ending at today's UTC midnight, seeded once through the
in-process plane and reused while spans/day, days and the end day match. The span-scope
support-cases pipeline (`pipelines_repo/pipelines/support_cases.py`, filter
`metadata.flagged = true`) is copied into per-contender PIPELINES_DIRs, importing this project's
`DatasetPipeline` with `start_date` = the first seeded day, so exactly `--days` closed daily
partitions exist. Each contender writes its own dataset:

  bt-dagster       `bt-dagster datasets pipeline run FILE --start S --end E --no-limit --json -q
                   --target-dataset ...` in a subprocess (process start-up included); the baseline;
  dagster          in this process: `build_definitions()` + ONE `dagster.materialize` of the
                   pipeline's three assets over the whole partition range (tags
                   `dagster/asset_partition_range_start/end`; single-run backfill policy) on a
                   DagsterInstance read from `home/dagster.yaml`; timed end to end;
  dagster CLI      `dagster asset materialize -f definitions.py --select group:<g> --partition-range
                   A...B` in a subprocess (process start-up and definitions load included), with
                   its own DAGSTER_HOME (`home-dagster-cli/`, same dagster.yaml) and BT_LOCAL_DB
                   pointing at the same plane (skip with `--no-dagster-cli`);
  no-op floor      Dagster's own cost of the same backfill shape: three chained daily assets with the
                   same partitions and single-run policy whose bodies only add per-partition metadata,
                   one in-process materialize on its own instance (skip with `--no-floor`), once
                   on the repo's dagster.yaml (pooled SQLite storage) and once on Dagster's stock
                   SQLite storage (the same yaml without its `storage:` block).

After the runs, every dataset's ids are read back and must equal (same count, same ids) the
flagged spans of the window counted straight from the plane's SQLite file. Printed: a table
contender | seconds | rows | rows/s | ratio vs bt-dagster, Dagster's own run and per-step
durations (from the instance's run/step stats), the materializations recorded per asset (one per
partition expected) and the number of runs (1 expected). `--profile` runs the in-process Dagster
contender under cProfile (its time is then inflated) and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from plane_counts import FLAGGED, count_window, seeded_db  # noqa: E402

PIPELINE = REPO / "pipelines_repo" / "pipelines" / "support_cases.py"
DAGSTER_YAML = REPO / "dagster_home" / "dagster.yaml"
PROJECT = "Customer Support"
SEED = 7
GOAL_RATIO = 1.5
GOAL_WORK_RATIO = 1.2  # the pipeline work above Dagster's no-op floor, vs bt-dagster's run
STAGES = ("pulled_refs", "transformed_rows", "dataset_version")

# contender -> (pipeline name, target dataset)
DAGSTER = ("support-cases-bench", "Support cases (bench dagster)")
DAGSTER_CLI = ("support-cases-bench-cli", "Support cases (bench dagster CLI)")
BT_DATASET = "Support cases (bench bt-dagster)"


def iso(moment: datetime) -> str:
    """Canonical UTC text, as the plane stores `created` (text order = time order)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything pointing at another plane, plus `extra`."""
    drop = ("BRAINTRUST_API_KEY", "BRAINTRUST_API_URL", "BRAINTRUST_APP_URL", "BRAINTRUST_ORG_NAME", "BT_LOCAL_DB",
            "PIPELINES_DIR", "DAGSTER_HOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    env.update(extra)
    return env




def flagged_ids(db: Path, project_id: str, lo: str, hi: str) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        (obj,) = conn.execute("SELECT pk FROM objects WHERE kind = 'project' AND id = ?", (project_id,)).fetchone()
        return {
            rid for (rid,) in conn.execute(
                "SELECT id FROM rows WHERE obj = ? AND head = 1 AND deleted = 0 AND created >= ? AND created < ?"
                f" AND {FLAGGED}", (obj, lo, hi))
        }
    finally:
        conn.close()


# -- pipeline files -----------------------------------------------------------------------------


def write_pipeline(directory: Path, name: str, dataset: str, start_date: date) -> Path:
    """A copy of support_cases.py importing this project's DatasetPipeline, renamed, retargeted,
    starting at `start_date` (the transform is the file's own, unchanged)."""
    text = PIPELINE.read_text()
    edits = [
        ("from braintrust import DatasetPipeline", "from pipelines_repo import DatasetPipeline"),
        ('name="support-cases",', f"name={name!r},"),
        ('"dataset_name": "Support cases",', f'"dataset_name": {dataset!r},'),
    ]
    for old, new in edits:
        assert text.count(old) == 1, f"{PIPELINE} changed: expected exactly one {old!r}"
        text = text.replace(old, new)
    call, n = re.subn(r"\n\)\s*$", f"\n    start_date={start_date.isoformat()!r},\n)\n", text)
    assert n == 1, f"{PIPELINE} changed: expected the DatasetPipeline(...) call to close the file"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "support_cases_bench.py"
    path.write_text(call)
    return path


def make_home(path: Path, stock_storage: bool = False) -> Path:
    """A fresh DAGSTER_HOME with the repo's dagster.yaml; `stock_storage` drops its storage block, so
    Dagster's own SQLite storage (a new engine per event) is used."""
    import yaml

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    if stock_storage:
        config.pop("storage")
    (path / "dagster.yaml").write_text(yaml.safe_dump(config))
    return path


# -- contenders ---------------------------------------------------------------------------------


def run_subprocess(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return seconds, proc.stdout, proc.stderr


def run_dagster_inprocess(home: Path, pipelines_dir: Path, first: str, last: str, profile: bool) -> dict[str, Any]:
    """build_definitions() + one materialize over [first, last] on the instance of `home`."""
    import dagster as dg

    from pipelines_repo.orchestration import build_definitions
    from pipelines_repo.orchestration.translator import sanitize_name

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    env = clean_env(DAGSTER_HOME=str(home), PIPELINES_DIR=str(pipelines_dir))
    for key in set(os.environ) - set(env):
        del os.environ[key]
    os.environ.update(env)  # the staging root and the local plane are resolved from here at run time
    out: dict[str, Any] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:  # reads home/dagster.yaml
        profiler = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        defs = build_definitions()
        t1 = time.perf_counter()
        group = sanitize_name(DAGSTER[0])  # the translator's group (and key prefix) for the pipeline
        result = dg.materialize(
            defs.assets,
            selection=dg.AssetSelection.groups(group),
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            resources={"braintrust": defs.resources["braintrust"]},
            instance=instance,
            raise_on_error=False,
        )
        t2 = time.perf_counter()
        if profiler:
            profiler.disable()
            out["profile"] = profiler
        assert result.success, "the Dagster run failed"
        out.update(seconds=t2 - t0, defs_seconds=t1 - t0, materialize_seconds=t2 - t1, group=group)
        out.update(instance_facts(instance, [dg.AssetKey([group, stage]) for stage in STAGES]))
    return out


def run_dagster_noop(home: Path, start_date: date, first: str, last: str) -> dict[str, Any]:
    """Dagster's own floor: three chained daily assets like the pipeline's (same partitions, single-run
    policy, per-partition metadata, no IO manager) whose bodies do nothing; one materialize."""
    import dagster as dg

    pdef = dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC", end_offset=0)
    policy = dg.BackfillPolicy.single_run()

    def stage(name: str, dep: str | None) -> dg.AssetsDefinition:
        @dg.asset(key=["noop", name], group_name="noop", deps=[dg.AssetKey(["noop", dep])] if dep else [],
                  partitions_def=pdef, backfill_policy=policy)
        def body(context):  # unannotated: this module's annotations are strings (__future__)
            for key in context.partition_keys:
                context.add_asset_metadata({"rows": 0}, partition_key=key)
            return dg.MaterializeResult(metadata={"partitions_in_run": len(context.partition_keys)})

        return body

    assets = [stage("pulled_refs", None), stage("transformed_rows", "pulled_refs"), stage("dataset_version", "transformed_rows")]
    os.environ["DAGSTER_HOME"] = str(home)  # dagster.yaml reads the storage directory from it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        t0 = time.perf_counter()
        result = dg.materialize(
            assets,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            instance=instance,
        )
        seconds = time.perf_counter() - t0
        assert result.success
        return {"seconds": seconds, "materialize_seconds": seconds,
                **instance_facts(instance, [dg.AssetKey(["noop", s]) for s in STAGES])}


def instance_facts(instance: Any, keys: list[Any]) -> dict[str, Any]:
    """Runs, run/step durations and materializations per asset recorded in an instance."""
    runs = instance.get_runs()
    facts: dict[str, Any] = {"runs": len(runs), "materializations": {}, "materialized_partitions": {}}
    for key in keys:
        facts["materializations"][key.path[-1]] = len(instance.fetch_materializations(key, limit=10_000).records)
        facts["materialized_partitions"][key.path[-1]] = len(instance.get_materialized_partitions(key))
    if runs:
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        facts["run_seconds"] = (stats.end_time or 0) - (stats.start_time or 0)
        facts["run_partitions"] = (run.tags.get("dagster/asset_partition_range_start"),
                                   run.tags.get("dagster/asset_partition_range_end"))
        events = instance.all_logs(run.run_id)
        facts["events"] = len(events)
        facts["planned_events"] = sum(
            1 for e in events if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION_PLANNED"
        )
        facts["steps"] = {
            s.step_key: (s.end_time or 0) - (s.start_time or 0)
            for s in sorted(instance.get_run_step_stats(run.run_id), key=lambda s: s.start_time or 0)
        }
    return facts


def dataset_ids(db: Path, dataset_name: str) -> set[str]:
    from pipelines_repo.backend import open_client
    from pipelines_repo.settings import ApiSettings

    with open_client(ApiSettings(), local_db=db) as client:
        project = client.get_project(name=PROJECT)
        found = client.find_dataset(project["id"], dataset_name) if project else None
        assert found is not None, f"dataset {dataset_name!r} was not created"
        return {row["id"] for row in client.fetch_dataset(found["id"])}


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans-per-day", type=int, default=300)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--dir", type=Path, help="working directory; keeps seed.db for reruns (default: a temporary one)")
    parser.add_argument("--no-dagster-cli", action="store_true", help="skip the `dagster asset materialize` contender")
    parser.add_argument("--no-floor", action="store_true", help="skip the no-op Dagster assets (Dagster's own floor)")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process Dagster contender (inflates it)")
    args = parser.parse_args()

    workdir = (args.dir or Path(tempfile.mkdtemp(prefix="bt-bench-backfill-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    first_key, last_key = start.date().isoformat(), (end - timedelta(days=1)).date().isoformat()
    lo, hi = iso(start), iso(end)

    seed_db, info = seeded_db(workdir, project=PROJECT, spans_per_day=args.spans_per_day, days=args.days, seed=SEED, end=end)
    project_id = info["project_id"]

    # Fresh homes, a fresh copy of the plane, fresh pipeline dirs: every run starts from the same state.
    home = make_home(workdir / "home")
    cli_home = make_home(workdir / "home-dagster-cli")
    plane_db = home / "braintrust-local.db"
    for suffix in ("", "-wal"):
        if Path(f"{seed_db}{suffix}").exists():
            shutil.copyfile(f"{seed_db}{suffix}", f"{plane_db}{suffix}")
    for sub in ("pipelines-dagster", "pipelines-dagster-cli", "bt-cli"):
        shutil.rmtree(workdir / sub, ignore_errors=True)
    dagster_file = write_pipeline(workdir / "pipelines-dagster", *DAGSTER, start.date())
    write_pipeline(workdir / "pipelines-dagster-cli", *DAGSTER_CLI, start.date())
    (workdir / "bt-cli").mkdir()

    # Counting reads every page of the window once, so no contender pays for a cold cache alone.
    spans, flagged = count_window(plane_db, project_id, lo, hi)
    expected_ids = flagged_ids(plane_db, project_id, lo, hi)
    assert flagged == len(expected_ids) > 0, "no flagged spans in the window: seed more spans"

    bin_dir = Path(sys.executable).parent
    results: dict[str, dict[str, Any]] = {}

    # Start-up floor of a CLI process (interpreter + imports), for reading the subprocess figures.
    startup, _, _ = run_subprocess([str(bin_dir / "bt-dagster"), "--help"], clean_env(), workdir)

    print(f"bt-dagster over [{lo}, {hi}) ...", file=sys.stderr, flush=True)
    cmd = [str(bin_dir / "bt-dagster"), "datasets", "pipeline", "run", str(dagster_file), "--start", lo, "--end", hi,
           "--no-limit", "--json", "-q", "--target-dataset", BT_DATASET]
    seconds, stdout, _ = run_subprocess(cmd, clean_env(DAGSTER_HOME=str(home)), workdir / "bt-cli")
    summary = json.loads(stdout.strip().splitlines()[-1])
    results["bt-dagster"] = {"seconds": seconds, "dataset": BT_DATASET, "reported_rows": summary["rows"]}

    print(f"dagster materialize in-process, {first_key}...{last_key} ...", file=sys.stderr, flush=True)
    dg_result = run_dagster_inprocess(home, workdir / "pipelines-dagster", first_key, last_key, args.profile)
    results["dagster"] = {**dg_result, "dataset": DAGSTER[1]}

    if not args.no_floor:
        print("dagster materialize in-process, no-op asset bodies ...", file=sys.stderr, flush=True)
        results["dagster no-op"] = run_dagster_noop(make_home(workdir / "home-noop"), start.date(), first_key, last_key)
        print("dagster materialize in-process, no-op asset bodies, Dagster's stock SQLite storage ...",
              file=sys.stderr, flush=True)
        results["dagster no-op stock"] = run_dagster_noop(make_home(workdir / "home-noop-stock", stock_storage=True),
                                                          start.date(), first_key, last_key)

    if not args.no_dagster_cli:
        print("dagster asset materialize (CLI subprocess) ...", file=sys.stderr, flush=True)
        from pipelines_repo.orchestration.translator import sanitize_name

        group = sanitize_name(DAGSTER_CLI[0])
        cmd = [str(bin_dir / "dagster"), "asset", "materialize", "-f", str(REPO / "definitions.py"),
               "--select", f"group:{group}", "--partition-range", f"{first_key}...{last_key}"]
        env = clean_env(DAGSTER_HOME=str(cli_home), PIPELINES_DIR=str(workdir / "pipelines-dagster-cli"),
                        BT_LOCAL_DB=str(plane_db))
        seconds, _, _ = run_subprocess(cmd, env, REPO)
        import dagster as dg

        os.environ["DAGSTER_HOME"] = str(cli_home)  # dagster.yaml reads the storage directory from it
        with dg.DagsterInstance.from_config(str(cli_home)) as instance:
            facts = instance_facts(instance, [dg.AssetKey([group, stage]) for stage in STAGES])
        results["dagster CLI"] = {"seconds": seconds, "dataset": DAGSTER_CLI[1], **facts}

    # Verification: every dataset holds exactly the flagged spans of the window (same ids).
    for name, r in results.items():
        if name.startswith("dagster no-op"):
            r["rows"] = 0
            continue
        ids = dataset_ids(plane_db, r["dataset"])
        r["rows"] = len(ids)
        assert ids == expected_ids, (name, len(ids), len(expected_ids), len(ids ^ expected_ids))
    assert results["bt-dagster"]["reported_rows"] == flagged, results["bt-dagster"]
    for name in ("dagster", "dagster no-op", "dagster no-op stock", "dagster CLI"):
        r = results.get(name)
        if r is None:
            continue
        assert r["runs"] == 1, (name, r["runs"])
        assert set(r["materialized_partitions"].values()) == {args.days}, (name, r["materialized_partitions"])

    # -- report ---------------------------------------------------------------------------------
    size_mb = sum(p.stat().st_size for p in workdir.glob("seed.db*")) / 1e6
    base = results["bt-dagster"]["seconds"]
    print(f"Dagster backfill benchmark: support-cases (span scope, filter metadata.flagged = true), {args.days} daily partitions")
    print(f"{info['spans']:,} spans seeded over {args.days} days ({args.spans_per_day}/day, db {size_mb:,.0f} MB, "
          f"{os.cpu_count()} CPUs); window {lo} .. {hi} ({first_key}...{last_key}): {spans:,} spans, {flagged:,} flagged")
    print(f"{'contender':<30}{'seconds':>9}{'rows':>8}{'rows/s':>9}{'vs bt-dagster':>15}")
    labels = {"bt-dagster": "bt-dagster run (subprocess)", "dagster": "dagster materialize (in-proc)",
              "dagster no-op": "  same, no-op asset bodies",
              "dagster no-op stock": "  no-op, Dagster's own storage", "dagster CLI": "dagster asset materialize"}
    for name, r in results.items():
        print(f"{labels[name]:<30}{r['seconds']:>9.2f}{r['rows']:>8,}{r['rows'] / r['seconds']:>9,.0f}"
              f"{r['seconds'] / base:>14.2f}x")
    print(f"(subprocess figures include process start-up: `bt-dagster --help` takes {startup:.2f} s; "
          f"in-process dagster = build_definitions {dg_result['defs_seconds']:.2f} s + materialize "
          f"{dg_result['materialize_seconds']:.2f} s)")
    for name in ("dagster", "dagster no-op", "dagster no-op stock", "dagster CLI"):
        r = results.get(name)
        if r is None:
            continue
        steps = ", ".join(f"{k.split('__')[-1]} {v:.2f} s" for k, v in r["steps"].items())
        mats = ", ".join(f"{k} {v}" for k, v in r["materializations"].items())
        print(f"{name}: {r['runs']} run ({r['run_partitions'][0]}...{r['run_partitions'][1]}), run {r['run_seconds']:.2f} s "
              f"by Dagster's clock; steps: {steps}")
        print(f"{name}: materializations recorded per asset: {mats}; {r['events']:,} events in the run's log, "
              f"{r['planned_events']:,} of them ASSET_MATERIALIZATION_PLANNED")
        if "materialize_seconds" in r:
            print(f"{name}: materialize() {r['materialize_seconds']:.2f} s = run creation and teardown "
                  f"{r['materialize_seconds'] - r['run_seconds']:.2f} s + run {r['run_seconds']:.2f} s")
    if "dagster no-op" in results:
        noop = results["dagster no-op"]["seconds"]
        print(f"dagster minus its no-op floor: {results['dagster']['seconds'] - noop:.2f} s of pipeline work "
              f"({(results['dagster']['seconds'] - noop) / base:.2f}x bt-dagster); the floor alone is {noop / base:.2f}x")
        stock = results["dagster no-op stock"]["seconds"]
        print(f"Dagster's bookkeeping on its stock SQLite storage vs bt-dagster's pooled storage (no-op bodies): "
              f"{stock:.2f} s vs {noop:.2f} s ({stock / noop:.2f}x)")
    ratio = results["dagster"]["seconds"] / base
    print(f"{'goal':<52}{'measured':>10}  met")
    print(f"{f'dagster in-process within {GOAL_RATIO:g}x of bt-dagster':<52}{ratio:>9.2f}x  {'yes' if ratio <= GOAL_RATIO else 'NO'}")
    if "dagster no-op" in results:
        work = (results["dagster"]["seconds"] - results["dagster no-op"]["seconds"]) / base
        print(f"{f'pipeline work above the no-op floor within {GOAL_WORK_RATIO:g}x of bt-dagster':<52}{work:>9.2f}x  "
              f"{'yes' if work <= GOAL_WORK_RATIO else 'NO'}")

    if args.profile and "profile" in dg_result:
        stream = io.StringIO()
        stats = pstats.Stats(dg_result["profile"], stream=stream)
        stats.dump_stats(str(workdir / "dagster_inprocess.prof"))
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(30)
        print(stream.getvalue(), file=sys.stderr)
        print(f"profile saved to {workdir / 'dagster_inprocess.prof'}", file=sys.stderr)

    if not args.dir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
