"""Per-run staging directories: a stage materialized in a later run adopts the upstream files of
an earlier run, and finished runs' directories are pruned after a push (local plane, tmp home)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from helpers import EXAMPLES
from pipelines_repo.orchestration import build_definitions
from test_dagster_materialize import Plane, expected_support_cases, plane  # noqa: F401 - fixture

PIPELINE = "support_cases"


def run(defs: dg.Definitions, instance: dg.DagsterInstance, day: str, *stages: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        defs.assets,
        selection=dg.AssetSelection.assets(*[dg.AssetKey([PIPELINE, s]) for s in stages]),
        partition_key=day,
        resources={"braintrust": defs.resources["braintrust"]},
        instance=instance,
    )


def run_dirs(home: Path) -> dict[str, set[str]]:
    """Run directory -> the files in it, under the pipeline's staging."""
    base = home / "bt-sync" / "dataset_pipeline_support-cases"
    return {d.name: {p.name for p in d.iterdir()} for d in base.glob("*/runs/*")}


def test_later_runs_adopt_upstream_stages_and_prune_finished_runs(plane: Plane, instance: dg.DagsterInstance) -> None:  # noqa: F811
    defs = build_definitions(EXAMPLES)
    day = plane.day(2)
    pulled = run(defs, instance, day, "pulled_refs")
    assert set(run_dirs(plane.home)) == {pulled.run_id}

    transformed = run(defs, instance, day, "transformed_rows")
    dirs = run_dirs(plane.home)
    assert set(dirs) == {pulled.run_id, transformed.run_id}
    assert {"pulled.jsonl", "pull.manifest.json", "transformed.jsonl"} <= dirs[transformed.run_id]
    assert "transformed.jsonl" not in dirs[pulled.run_id], "the earlier run's directory is left as it was"

    pushed = run(defs, instance, day, "dataset_version")
    rows, _ = plane.dataset("Support cases")
    assert rows == expected_support_cases(plane, day, day)
    assert set(run_dirs(plane.home)) == {pushed.run_id}, "finished runs' directories are pruned"

    again = run(defs, instance, day, "pulled_refs", "transformed_rows", "dataset_version")
    assert set(run_dirs(plane.home)) == {again.run_id}
    assert plane.dataset("Support cases")[0] == rows
