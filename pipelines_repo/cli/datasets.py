"""`bt-dagster datasets ...`: bt's dataset commands (list, view, create, update, delete, snapshots) and ours
(upload, schema, versions, diff, copy, rows delete), all over the datasets room.

Every command takes ``--project P`` (env ``BRAINTRUST_DEFAULT_PROJECT``) and ``--json``. Output: a
summary as ``key: value`` lines on stderr, or with ``--json`` one JSON object on stdout; errors
exit 1 with one line ``error: <where>: <cause>. Fix: <fix>``. Where we differ from bt on purpose
(deterministic ids, CSV and mappings, schemas enforced on every write) the README says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..client import BraintrustError
from ..datasets.errors import DatasetError
from ..engine.spec import TargetSpec

DEFAULT_PROJECT_ENV = "BRAINTRUST_DEFAULT_PROJECT"
MAPPING_FLAGS = ("input", "expected", "metadata", "tags", "ignore")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", "-p", default=os.environ.get(DEFAULT_PROJECT_ENV) or None,
                        help=f"the dataset's project (env {DEFAULT_PROJECT_ENV})")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")


def _upload_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("file and mapping")
    group.add_argument("--format", default="auto", choices=("auto", "csv", "json", "jsonl", "parquet"))
    for name in MAPPING_FLAGS:
        group.add_argument(f"--{name}", nargs="+", action="extend", default=[], metavar="COL",
                           help=f"columns that go to {name}" if name != "ignore" else "columns not imported")
    group.add_argument("--map", type=Path, help="a YAML mapping file (columns, parse rules, constant metadata)")
    group.add_argument("--id-field", help="dot path of the row id (default: the `id` column)")
    group.add_argument("--on-duplicate", choices=("last", "error"), default="last",
                       help="rows sharing an id: keep the last (default, like Braintrust's UI) or fail (bt)")
    group.add_argument("--mode", choices=("upsert", "mirror"), default="upsert",
                       help="mirror also deletes dataset rows whose ids the file lacks")
    group.add_argument("--yes", action="store_true", help="confirm mirror deletes without asking")
    group.add_argument("--dry-run", action="store_true", help="print the mapping, counts and sample rows; write nothing")
    group.add_argument("--max-invalid", type=int, default=0, help="rows allowed to fail the schemas (quarantined); above it nothing is written")
    group.add_argument("--quarantine", type=Path, help="where rows failing the schemas go (default FILE.quarantine.jsonl)")


def register(dsub: argparse._SubParsersAction) -> None:
    """Add the dataset commands to the ``datasets`` group."""
    ls = dsub.add_parser("list", help="datasets of a project")
    _common(ls)
    ls.set_defaults(handler=_run, action="list")

    view = dsub.add_parser("view", help="rows of a dataset")
    _common(view)
    view.add_argument("name")
    view.add_argument("--limit", type=int, default=200)
    view.add_argument("--all-rows", action="store_true")
    view.add_argument("--version", help="an xact id, snapshot name or ISO time")
    view.set_defaults(handler=_run, action="view")

    upload = dsub.add_parser("upload", help="upload a CSV, JSON, JSONL or Parquet file into a dataset")
    upload.add_argument("file", type=Path)
    _common(upload)
    upload.add_argument("--dataset", "-d", required=True)
    _upload_flags(upload)
    upload.set_defaults(handler=_run, action="upload")

    create = dsub.add_parser("create", help="create a dataset, optionally from a file (fails if it exists)")
    create.add_argument("name")
    _common(create)
    create.add_argument("--description")
    create.add_argument("--file", type=Path)
    _upload_flags(create)
    create.set_defaults(handler=_run, action="create")

    for alias in ("update", "add", "refresh"):
        update = dsub.add_parser(alias, help="upsert a file's rows into an existing dataset" if alias == "update" else "alias of update")
        update.add_argument("name")
        _common(update)
        update.add_argument("--file", type=Path, required=True)
        _upload_flags(update)
        update.set_defaults(handler=_run, action="update")

    delete = dsub.add_parser("delete", help="delete a dataset")
    delete.add_argument("name")
    _common(delete)
    delete.add_argument("--force", "-f", action="store_true", help="needed: deleting a dataset cannot be undone")
    delete.set_defaults(handler=_run, action="delete")

    _register_snapshots(dsub)
    _register_schema(dsub)

    runs = dsub.add_parser("runs", help="experiments that evaluated the dataset (by origin); --row: that row's scores in each")
    runs.add_argument("name")
    runs.add_argument("--row", help="a row id: its scores in each experiment")
    _common(runs)
    runs.set_defaults(handler=_run, action="runs")

    versions = dsub.add_parser("versions", help="every version of a dataset with rows added, updated, deleted")
    versions.add_argument("name")
    _common(versions)
    versions.set_defaults(handler=_run, action="versions")

    diff = dsub.add_parser("diff", help="ids added, removed and modified between two versions, with field-level patches")
    diff.add_argument("name")
    _common(diff)
    diff.add_argument("--from", dest="from_version", required=True, help="xact id, snapshot name or ISO time")
    diff.add_argument("--to", dest="to_version", default="head", help="xact id, snapshot name or ISO time (default: head)")
    diff.add_argument("--format", dest="diff_format", choices=("table", "json", "jsonl", "md"), default="table")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when the versions differ")
    diff.set_defaults(handler=_run, action="diff")

    copy = dsub.add_parser("copy", help="copy rows into another dataset (ids kept, origin points at the source)")
    copy.add_argument("source")
    copy.add_argument("dest")
    _common(copy)
    copy.add_argument("--version")
    copy.add_argument("--filter", dest="filter_sql")
    copy.add_argument("--to-project")
    copy.add_argument("--max-invalid", type=int, default=0)
    copy.set_defaults(handler=_run, action="copy")

    rows = dsub.add_parser("rows", help="row commands")
    rsub = rows.add_subparsers(dest="rows_command", required=True, metavar="ACTION")
    rdel = rsub.add_parser("delete", help="delete rows by id or filter")
    rdel.add_argument("name")
    _common(rdel)
    rdel.add_argument("--ids", nargs="+")
    rdel.add_argument("--filter", dest="filter_sql")
    rdel.add_argument("--dry-run", action="store_true")
    rdel.set_defaults(handler=_run, action="rows_delete")


def _register_snapshots(dsub: argparse._SubParsersAction) -> None:
    snaps = dsub.add_parser("snapshots", help="named dataset versions (bt's snapshots)")
    ssub = snaps.add_subparsers(dest="snapshots_command", required=True, metavar="ACTION")
    for action in ("list", "create", "delete", "restore"):
        parser = ssub.add_parser(action)
        parser.add_argument("dataset")
        _common(parser)
        if action != "list":
            parser.add_argument("snapshot", nargs="?", help="snapshot name")
            parser.add_argument("--name", dest="snapshot_name")
        if action == "create":
            parser.add_argument("--xact-id", help="version to name (default: the head)")
            parser.add_argument("--description")
        if action in ("delete", "restore"):
            parser.add_argument("--snapshot", "--version", dest="snapshot_xact", help="the snapshot's xact id")
            parser.add_argument("--force", action="store_true")
        parser.set_defaults(handler=_run, action=f"snapshots_{action}")


def _register_schema(dsub: argparse._SubParsersAction) -> None:
    schema = dsub.add_parser("schema", help="JSON Schemas for input, expected and metadata")
    ssub = schema.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    infer = ssub.add_parser("infer", help="infer schemas from the first rows")
    infer.add_argument("name")
    _common(infer)
    infer.add_argument("--sample", type=int, default=100)
    infer.add_argument("--write", action="store_true", help="store the schemas in the dataset")
    infer.add_argument("--enforce", action="store_true", help="mark them enforced")
    infer.set_defaults(handler=_run, action="schema_infer")
    show = ssub.add_parser("show")
    show.add_argument("name")
    _common(show)
    show.set_defaults(handler=_run, action="schema_show")
    sset = ssub.add_parser("set")
    sset.add_argument("name")
    _common(sset)
    sset.add_argument("--field", required=True, choices=("input", "expected", "metadata"))
    sset.add_argument("--file", type=Path, required=True, help="the JSON Schema")
    sset.add_argument("--enforce", action="store_true")
    sset.set_defaults(handler=_run, action="schema_set")
    check = ssub.add_parser("check", help="validate every row; report every error")
    check.add_argument("name")
    _common(check)
    check.set_defaults(handler=_run, action="schema_check")


# -- running -----------------------------------------------------------------------------------


class _Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def _target(args: argparse.Namespace, name: str, project: str | None = None) -> TargetSpec:
    project = project or args.project
    if not project:
        raise DatasetError("--project", "is missing", f"pass --project NAME or set {DEFAULT_PROJECT_ENV}")
    return TargetSpec(project_name=project, dataset_name=name)


def _upload_options(args: argparse.Namespace):
    from ..datasets.mapping import ColumnMapping
    from ..datasets.upload import UploadOptions

    base = ColumnMapping.load(args.map) if args.map else None
    mapping = ColumnMapping.from_options(base=base, id_field=args.id_field, **{k: getattr(args, k) for k in MAPPING_FLAGS})
    return UploadOptions(fmt=args.format, mapping=mapping, mode=args.mode, on_duplicate=args.on_duplicate,
                         dry_run=args.dry_run, max_invalid=args.max_invalid, quarantine_path=args.quarantine)


def _confirm(args: argparse.Namespace):
    def confirm(count: int) -> bool:
        print(f"mirror: {count} dataset row(s) are not in the file and will be deleted", file=sys.stderr)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            return False
        return input("delete them? [y/N] ").strip().lower() in ("y", "yes")
    return confirm


def _upload(client, args: argparse.Namespace, path: Path, target: TargetSpec) -> dict[str, Any]:
    from ..datasets.upload import upload_file
    from .progress import make_progress, progress_enabled

    # a bar per stage (reading the file, comparing with the dataset) on a terminal, never with --json
    with make_progress(progress_enabled(json_output=args.json)) as progress:
        result = upload_file(client, path, target, _upload_options(args), confirm_delete=_confirm(args),
                             on_progress=lambda stage, rows: progress.update(stage, rows=rows))
    return result.to_dict()


def _dispatch(client, args: argparse.Namespace) -> Any:
    from ..datasets import catalog, copy, upload, versions

    action = args.action
    if action == "list":
        return {"datasets": [{k: d.get(k) for k in ("name", "id", "description", "created")}
                             for d in catalog.list_datasets(client, args.project or _target(args, "-").project_name)]}
    if action == "view":
        limit = None if args.all_rows else args.limit
        return {"rows": list(catalog.view_rows(client, _target(args, args.name), limit=limit, version=args.version))}
    if action == "upload":
        return _upload(client, args, args.file, _target(args, args.dataset))
    if action == "create":
        target = _target(args, args.name)
        if upload.find_dataset(client, target)[1] is not None:
            raise DatasetError(f"dataset {args.name!r}", "already exists", "use `datasets update` (or `upload`) to add rows to it")
        if args.file:
            return _upload(client, args, args.file, target.model_copy(update={"description": args.description}))
        created = client.ensure_dataset(client.ensure_project(target.project_name)["id"], args.name, description=args.description)
        return {"dataset_id": created["id"], "dataset_name": created["name"], "rows": 0}
    if action == "update":
        target = _target(args, args.name)
        copy.require_dataset(client, target)
        return _upload(client, args, args.file, target)
    if action == "delete":
        if not args.force:
            raise DatasetError(f"dataset {args.name!r}", "deleting a dataset cannot be undone", "pass --force")
        dropped = catalog.drop_dataset(client, _target(args, args.name))
        return {"deleted": dropped["id"], "dataset_name": dropped["name"]}
    if action.startswith("snapshots_"):
        return _snapshots(client, args)
    if action.startswith("schema_"):
        return _schema(client, args)
    if action == "versions":
        dataset = copy.require_dataset(client, _target(args, args.name))
        return {"dataset_id": dataset["id"], "versions": versions.list_versions(client, dataset["id"])}
    if action == "runs":
        from ..evals.history import dataset_runs

        dataset = copy.require_dataset(client, _target(args, args.name))
        return {"dataset_id": dataset["id"], "row": args.row, "runs": dataset_runs(client, dataset["id"], row_id=args.row)}
    if action == "diff":
        dataset = copy.require_dataset(client, _target(args, args.name))
        return versions.diff_dataset(client, dataset["id"], args.from_version, args.to_version)
    if action == "copy":
        from ..datasets.upload import UploadOptions

        result = copy.copy_dataset(client, _target(args, args.source), _target(args, args.dest, args.to_project),
                                   version=args.version, filter_sql=args.filter_sql,
                                   options=UploadOptions(max_invalid=args.max_invalid))
        return result.to_dict()
    if action == "rows_delete":
        return copy.delete_rows(client, _target(args, args.name), ids=args.ids, filter_sql=args.filter_sql, dry_run=args.dry_run).to_dict()
    raise AssertionError(action)


def _snapshots(client, args: argparse.Namespace) -> dict[str, Any]:
    from ..datasets import catalog

    target = _target(args, args.dataset)
    action = args.action.removeprefix("snapshots_")
    if action == "list":
        return {"snapshots": catalog.list_snapshots(client, target)}
    name = getattr(args, "snapshot_name", None) or getattr(args, "snapshot", None)
    if action == "create":
        snapshot, existing = catalog.create_snapshot(client, target, name, xact_id=args.xact_id, description=args.description)
        return {"snapshot": snapshot, "found_existing": existing}
    if action == "delete":
        if not args.force and not sys.stdin.isatty():
            raise DatasetError(f"snapshot {name or args.snapshot_xact!r}", "deleting needs confirmation", "pass --force")
        return {"deleted": catalog.delete_snapshot(client, target, name, args.snapshot_xact)}
    out = catalog.restore_snapshot(client, target, name, args.snapshot_xact, force=args.force)
    if not args.force:
        out["note"] = "preview only: pass --force to restore"
    return out


def _schema(client, args: argparse.Namespace) -> dict[str, Any]:
    from ..datasets import catalog

    target = _target(args, args.name)
    action = args.action.removeprefix("schema_")
    if action == "infer":
        return {"schemas": catalog.infer_dataset_schemas(client, target, sample=args.sample, write=args.write, enforce=args.enforce),
                "written": args.write}
    if action == "show":
        return {"schemas": catalog.show_schemas(client, target)}
    if action == "set":
        try:
            schema = json.loads(args.file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(str(args.file), f"cannot read the schema ({exc})", "pass a JSON Schema file") from None
        return {"schema": catalog.set_schema(client, target, args.field, schema, enforce=True if args.enforce else None)}
    result = catalog.check_schemas(client, target)
    if result["errors"]:
        result["_exit"] = 1
    return result


def _print(result: Any, args: argparse.Namespace) -> int:
    from ..datasets.diff import DatasetDiff
    from .tables import print_diff, print_summary

    if isinstance(result, DatasetDiff):
        code = 1 if args.exit_code and result.changed else 0
        print_diff(result, "json" if args.json else args.diff_format)
        return code
    code = result.pop("_exit", 0) if isinstance(result, dict) else 0
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print_summary(result)
    return code


def _run(args: argparse.Namespace) -> int:
    from ..backend import open_client

    try:
        with open_client() as client:
            return _print(_dispatch(client, args), args)
    except (DatasetError, BraintrustError) as exc:
        if args.verbose:
            raise
        message = getattr(exc, "message", None) if isinstance(exc, BraintrustError) else None
        print(f"error: {message or exc}", file=sys.stderr)
        return 1
