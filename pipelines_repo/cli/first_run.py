"""`bt-dagster first-run`: materialize, once, the windows with logs of every declared pipeline and
dataset file, so a new home's Dagster UI opens on filled datasets, partitions, checks and lineage."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("first-run", help="materialize the windows with logs of every example once (make dev runs it)")
    parser.add_argument("--pipelines-dir", type=Path, help="declarations to run (default $PIPELINES_DIR or the shipped examples)")
    parser.add_argument("--json", action="store_true", help="print what ran as JSON")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import dagster as dg

    from ..backend import open_client
    from ..orchestration.first_run import materialize_demo

    with dg.DagsterInstance.get() as instance, open_client() as client:
        runs = materialize_demo(args.pipelines_dir, instance, client)
    if args.json:
        print(json.dumps([run.__dict__ for run in runs], sort_keys=True))
    for run in runs:
        state = run.skipped or (f"{run.partitions} window(s) materialized" if run.success else "FAILED (see the run in the UI)")
        print(f"first run: {run.group}: {state}", file=sys.stderr)
    return 0 if all(run.success for run in runs) else 1
