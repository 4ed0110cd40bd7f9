"""`bt-dagster retention preview|apply|resolve`: the retention room's commands.

    bt-dagster retention preview NAME [--force] [--json]     what a run would delete and hold back, per day (or experiment)
    bt-dagster retention apply NAME [--force] [--json] [--batch-size N]
                                                             run the policy now (--force ignores the guard;
                                                             --batch-size: row ids tombstoned per request, default 1000)
    bt-dagster retention resolve --project P --span-id ID [--policy NAME | --archive PATH]

Policies are read from ``$PIPELINES_DIR`` (or ``--pipelines-dir``). The guard reads the Dagster
instance at ``$DAGSTER_HOME`` (materialized partitions of every pipeline and export reading the
project); without ``$DAGSTER_HOME`` a guarded policy needs ``--force``. Errors exit 1 with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..client import BraintrustError
from ..engine.errors import PipelineError


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("retention", help="retention policies: preview, apply, resolve archived spans")
    sub = group.add_subparsers(dest="retention_command", required=True, metavar="SUBCOMMAND")
    for name, text in (("preview", "what a run would delete and hold back, day by day"), ("apply", "run the policy now")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("name", help="the RetentionPolicy name")
        cmd.add_argument("--force", action="store_true", help="ignore the guard (delete days not harvested yet)")
        cmd.add_argument("--pipelines-dir", type=Path, help="folder of pipeline files (default $PIPELINES_DIR)")
        cmd.add_argument("--json", action="store_true", help="print the result as one JSON object")
        if name == "apply":
            cmd.add_argument("--batch-size", type=_positive, default=1000, metavar="N",
                             help="row ids tombstoned per delete request (default 1000)")
        cmd.set_defaults(handler=_run, action=name)
    resolve = sub.add_parser("resolve", help="find a deleted span in a policy's archive")
    resolve.add_argument("--project", "-p", required=True, help="project name or id")
    resolve.add_argument("--span-id", required=True, help="the span's row id (a dataset row's origin.id) or span_id")
    where = resolve.add_mutually_exclusive_group()
    where.add_argument("--policy", help="the policy whose archive to search (default: every policy with one)")
    where.add_argument("--archive", help="an archive folder")
    resolve.add_argument("--pipelines-dir", type=Path)
    resolve.set_defaults(handler=_run, action="resolve")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def _policies(directory: Path | None) -> list[Any]:
    from ..engine.loader import discover_declarations
    from ..orchestration.compiler import default_pipelines_dir
    from ..retention.spec import RetentionPolicySpec

    found = discover_declarations(directory or default_pipelines_dir())
    return [d for d in found.declarations if isinstance(d, RetentionPolicySpec)]


def _policy(name: str, directory: Path | None) -> Any:
    policies = _policies(directory)
    for policy in policies:
        if policy.name == name:
            return policy
    known = ", ".join(p.name for p in policies) or "none"
    raise PipelineError(f"no retention policy named {name!r} (known: {known})", fix="check the name or --pipelines-dir")


def _harvest(policy: Any, directory: Path | None, force: bool) -> Any:
    from ..retention.guard import NO_GUARD

    if force or not policy.guard or policy.object_type != "project_logs":
        return NO_GUARD
    if not os.environ.get("DAGSTER_HOME"):
        raise PipelineError("the guard reads the Dagster instance, but $DAGSTER_HOME is not set",
                            fix="set DAGSTER_HOME to the instance the pipelines run in, or pass --force")
    import dagster as dg

    from ..orchestration import build_definitions
    from ..orchestration.retention_guard import InstanceHarvest

    defs = build_definitions(directory, strict=False)
    return InstanceHarvest(dg.DagsterInstance.get(), defs.resolve_asset_graph().assets_defs)


def _print_plans(plans: list[Any], forced: bool) -> None:
    if forced:
        print("--force: the guard is ignored; days not harvested yet are deleted too", file=sys.stderr)
    if not plans:
        print("nothing older than the cutoff")
    for plan in plans:
        if plan.target.object_type == "experiment":  # one line: the experiment goes whole
            day = plan.days[0]
            print(f"{plan.target.label}  created {plan.target.created}  {day.rows:>8} row(s)  delete the experiment")
            continue
        print(f"{plan.target.label} (cutoff {plan.cutoff.isoformat()}):")
        if not plan.days:
            print("  nothing older than the cutoff")
        for day in plan.days:
            action = "HOLD BACK: " + "; ".join(day.held_back) if day.held_back else "delete"
            print(f"  {day.day.isoformat()}  {day.rows:>8} row(s)  {action}")


def _preview_or_apply(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    from ..retention.apply import apply_policy, preview

    policy = _policy(args.name, args.pipelines_dir)
    harvest = _harvest(policy, args.pipelines_dir, args.force)
    if args.action == "preview":
        plans = preview(client, policy, harvest, force=args.force)
        if not args.json:
            _print_plans(plans, args.force)
        return {"policy": policy.name, "forced": args.force, "targets": [
            {"label": p.target.label, "object_type": p.target.object_type, "object_id": p.target.object_id,
             "created": p.target.created, "cutoff": p.cutoff.isoformat(), "days": [d.to_dict() for d in p.days]}
            for p in plans]}
    if policy.apply != "delete":
        from ..retention.automation import sync_policy

        return {"policy": policy.name, "automations": [s.to_dict() for s in sync_policy(client, policy, force=args.force)]}
    if args.force:
        print("--force: the guard is ignored; days not harvested yet are deleted too", file=sys.stderr)
    log = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr))
    report = apply_policy(client, policy, harvest, force=args.force, batch_size=args.batch_size, log=log)
    if not args.json and policy.object_type == "experiment":
        print(f"deleted {len(report.deleted_experiments)} experiment(s) ({report.deleted} row(s)) created before {report.cutoff.isoformat()}")
    elif not args.json:
        print(f"deleted {report.deleted} row(s) older than {report.cutoff.isoformat()}; held back: "
              f"{sum(len(d) for d in report.held_back.values())} day(s)")
    return report.to_dict()


def _resolve(client: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    from ..retention.archive import resolve_span
    from ..retention.spec import ArchiveSpec

    project = client.get_project(name=args.project) or client.get_project(id=args.project)
    project_id = project["id"] if project else args.project
    if args.archive:
        archives = [ArchiveSpec(path=str(Path(args.archive).resolve()))]
    else:
        archives = [p.archive for p in _policies(args.pipelines_dir) if p.archive and (not args.policy or p.name == args.policy)]
    for archive in archives:
        found = resolve_span(archive, project_id, args.span_id)
        if found is not None:
            return found
    return None


def _run(args: argparse.Namespace) -> int:
    from ..backend import open_client

    try:
        with open_client() as client:
            if args.action == "resolve":
                found = _resolve(client, args)
                if found is None:
                    print(f"error: span {args.span_id!r} is in no archive of project {args.project!r}", file=sys.stderr)
                    return 1
                print(json.dumps(found, sort_keys=True, default=str))
                return 0
            result = _preview_or_apply(client, args)
    except (PipelineError, BraintrustError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    return 0
