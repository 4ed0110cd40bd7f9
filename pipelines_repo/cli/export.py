"""`bt-dagster export logs|dataset|experiment` and `bt-dagster sql`: the export room's commands.

    bt-dagster export logs --project P [--scope spans|traces] [--filter SQL] [--start T --end T | --window 7d]
                           [--format jsonl|json|csv|parquet] [--gzip] --out PATH_OR_URL
    bt-dagster export dataset --project P --dataset D [--version V | --snapshot S] [--filter SQL] --out ...
    bt-dagster export experiment --project P --experiment E [--filter SQL] --out ...
    bt-dagster sql "SELECT ... FROM project_logs('<id>') ..." [--fmt json|jsonl|csv|parquet]
                   [--tz-offset MIN] [--audit-log] [--out PATH_OR_URL]

``--out`` naming a file (``.jsonl``, ``.jsonl.gz``, ``.json``, ``.csv``, ``.parquet``) writes that
file and sets the format; any other value is a folder or URL prefix that receives
``<spans|traces|dataset|experiment|query>.<ext>``. Output: a progress bar on a terminal, then ``key: value``
summary lines on stderr, or with ``--json`` one JSON object on stdout; errors exit 1 with one line
``error: <where>: <cause>. Fix: <fix>`` (secrets redacted).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from typing import Any

from ..client import BraintrustError
from ..engine.errors import PipelineError
from ..engine.window import TimeWindow, parse_timestamp, parse_window
from ..export import DatasetSource, ExperimentSource, ExportOptionsError, QuerySource, SpanSource, TraceSource, export, open_sink
from ..export.errors import redact
from ..export.writers import FORMATS

DEFAULT_PROJECT_ENV = "BRAINTRUST_DEFAULT_PROJECT"
_SUFFIXES = {".jsonl.gz": ("jsonl", True), ".jsonl": ("jsonl", False), ".json": ("json", False),
             ".csv": ("csv", False), ".parquet": ("parquet", False)}


def _output_flags(parser: argparse.ArgumentParser, *, fmt_flag: str = "--format", out_required: bool = True) -> None:
    parser.add_argument(fmt_flag, dest="fmt", choices=FORMATS, help="file format (default: from --out's suffix, else jsonl)")
    parser.add_argument("--gzip", action="store_true", help="gzip the JSONL output (.jsonl.gz)")
    parser.add_argument("--out", required=out_required, help="a file, folder, or URL: s3://, gs://, az://, file://")
    parser.add_argument("--no-overwrite", action="store_true", help="fail if the file exists (a conditional write)")
    parser.add_argument("--rows-per-file", type=int, help="split into numbered files of at most this many rows")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks on errors")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``export`` (logs, dataset, experiment) and ``sql`` to the top-level commands."""
    group = commands.add_parser("export", help="export project logs, a dataset or an experiment to files or object storage")
    sub = group.add_subparsers(dest="export_command", required=True, metavar="SOURCE")
    logs = sub.add_parser("logs", help="project logs, one row per span or per trace")
    logs.add_argument("--project", "-p", default=os.environ.get(DEFAULT_PROJECT_ENV) or None)
    logs.add_argument("--scope", choices=("spans", "traces"), default="spans")
    logs.add_argument("--filter", dest="filter_sql", help="a SQL/BTQL filter, e.g. \"metadata.flagged = true\"")
    logs.add_argument("--start", help="ISO time: spans created at or after it")
    logs.add_argument("--end", help="ISO time: spans created before it")
    logs.add_argument("--window", help="the last N seconds, e.g. 90, 15m, 2h, 7d")
    _output_flags(logs)
    logs.set_defaults(handler=_run, action="logs")

    dataset = sub.add_parser("dataset", help="a dataset at head, a version or a snapshot")
    dataset.add_argument("--project", "-p", default=os.environ.get(DEFAULT_PROJECT_ENV) or None)
    dataset.add_argument("--dataset", "-d", required=True)
    pin = dataset.add_mutually_exclusive_group()
    pin.add_argument("--version", help="an _xact_id, snapshot name or ISO time")
    pin.add_argument("--snapshot", help="a snapshot name")
    dataset.add_argument("--filter", dest="filter_sql")
    _output_flags(dataset)
    dataset.set_defaults(handler=_run, action="dataset")

    experiment = sub.add_parser("experiment", help="an experiment's rows (every span of every case)")
    experiment.add_argument("--project", "-p", default=os.environ.get(DEFAULT_PROJECT_ENV) or None)
    experiment.add_argument("--experiment", "-e", required=True, help="the experiment's name in the project")
    experiment.add_argument("--filter", dest="filter_sql", help="a SQL/BTQL filter, e.g. \"is_root = true\"")
    _output_flags(experiment)
    experiment.set_defaults(handler=_run, action="experiment")

    sql = commands.add_parser("sql", help="run a SQL/BTQL query (Braintrust's SQL API) and print or save the rows")
    sql.add_argument("query", help="SQL or BTQL text; '-' reads it from stdin")
    sql.add_argument("--tz-offset", type=int, help="minutes behind UTC for day boundaries (480 = US Pacific)")
    sql.add_argument("--audit-log", action="store_true", help="add each row's audit_data (its version history)")
    _output_flags(sql, fmt_flag="--fmt", out_required=False)
    sql.set_defaults(handler=_run, action="sql")


def _destination(args: argparse.Namespace) -> tuple[str, str | None, str, bool]:
    """(folder or URL prefix, file name or None, format, gzip) from --out and --format."""
    out = args.out
    for suffix, (fmt, gz) in _SUFFIXES.items():
        if out.lower().endswith(suffix) and not out.endswith("/"):
            if args.fmt and args.fmt != fmt:
                raise ExportOptionsError("--out", f"ends in {suffix} but --format is {args.fmt}",
                                         f"drop --format or name the file *.{args.fmt}")
            folder, _, name = out.rpartition("/")
            return folder or ".", name, fmt, gz or args.gzip
    return out, None, args.fmt or "jsonl", args.gzip


def _window(args: argparse.Namespace) -> TimeWindow | None:
    if args.window and (args.start or args.end):
        raise ExportOptionsError("--window", "cannot be combined with --start/--end", "pass one or the other")
    try:
        if args.window:
            return TimeWindow.relative(parse_window(args.window))
        if args.start or args.end:
            start = parse_timestamp(args.start) if args.start else None
            end = parse_timestamp(args.end) if args.end else None
            return TimeWindow.absolute(start, end)
    except ValueError as exc:
        raise ExportOptionsError("--start/--end/--window", str(exc), "write e.g. --start 2026-01-01T00:00:00Z or --window 7d") from None
    return None


def _project_id(client, args: argparse.Namespace) -> str:
    if not args.project:
        raise ExportOptionsError("--project", "is missing", f"pass --project NAME or set {DEFAULT_PROJECT_ENV}")
    project = client.get_project(name=args.project)
    if project is None:
        raise ExportOptionsError(f"project {args.project!r}", "does not exist", "check the name (it is never created by an export)")
    return project["id"]


def _source(client, args: argparse.Namespace):
    if args.action == "logs":
        kind = TraceSource if args.scope == "traces" else SpanSource
        return kind(_project_id(client, args), filter_sql=args.filter_sql, window=_window(args))
    if args.action == "dataset":
        from ..datasets.catalog import find_snapshot
        from ..datasets.copy import require_dataset
        from ..datasets.versions import resolve_version
        from ..engine.spec import TargetSpec

        if not args.project:
            raise ExportOptionsError("--project", "is missing", f"pass --project NAME or set {DEFAULT_PROJECT_ENV}")
        dataset = require_dataset(client, TargetSpec(project_name=args.project, dataset_name=args.dataset))
        if args.snapshot:  # a snapshot name only: a typo must not resolve as an xact id or a time
            xact = str(find_snapshot(client, dataset["id"], args.snapshot, None)["xact_id"])
        else:
            xact = resolve_version(client, dataset["id"], args.version) if args.version else None
        return DatasetSource(dataset["id"], version=xact, filter_sql=args.filter_sql)
    if args.action == "experiment":
        project_id = _project_id(client, args)
        found = client.find_experiment(project_id, args.experiment)
        if found is None:
            names = ", ".join(repr(e.get("name")) for e in client.list_experiments(project_id)[:10]) or "none"
            raise ExportOptionsError(f"experiment {args.experiment!r} in project {args.project!r}", "does not exist",
                                     f"pass one of the project's experiment names (newest: {names})")
        return ExperimentSource(found["id"], filter_sql=args.filter_sql)
    text = sys.stdin.read() if args.query == "-" else args.query
    options: dict[str, Any] = {}
    if args.tz_offset is not None:
        options["tz_offset"] = args.tz_offset
    if args.audit_log:
        options["audit_log"] = True
    return QuerySource(text, options=options)


class _StdoutSink:
    """``sql`` without --out: the rows go to stdout."""

    url = "<stdout>"

    def check(self) -> None:
        pass

    def join(self, name: str) -> str:
        return self.url

    def open(self, name: str):
        return _StdoutFile()


class _StdoutFile:
    url = "<stdout>"

    def __init__(self) -> None:
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        self.bytes_written += len(data)

    def close(self) -> None:
        sys.stdout.flush()

    def abort(self) -> None:
        sys.stdout.flush()


def _dispatch(client, args: argparse.Namespace, progress) -> dict[str, Any]:
    source = _source(client, args)
    if args.action == "sql" and not args.out:
        fmt = args.fmt or "json"
        if fmt == "parquet" and sys.stdout.isatty():
            raise ExportOptionsError("--fmt parquet", "is binary and stdout is a terminal", "pass --out FILE.parquet")
        sys.stdout.flush()
        return export(client, source, _StdoutSink(), fmt=fmt, gzip_jsonl=args.gzip).to_dict()
    folder, name, fmt, gz = _destination(args)
    sink = open_sink(folder, overwrite=not args.no_overwrite)
    return export(client, source, sink, fmt=fmt, gzip_jsonl=gz, file_name=name, rows_per_file=args.rows_per_file,
                  on_batch=progress).to_dict()


def _progress(args: argparse.Namespace):
    """An ``on_batch`` callback drawing a rich status line on a terminal (stderr), else None."""
    from .progress import progress_enabled

    if not progress_enabled(json_output=args.json) or (args.action == "sql" and not args.out):
        return None, None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("Exporting {task.fields[detail]}"), TimeElapsedColumn(),
                   console=None, transient=True)
    task = bar.add_task("export", detail="")

    def on_batch(rows: int, nbytes: int) -> None:
        bar.update(task, detail=f"{rows:,} rows | {nbytes / 1e6:,.1f} MB")
    return bar, on_batch


def _run(args: argparse.Namespace) -> int:
    from ..backend import open_client

    started = time.perf_counter()
    try:
        bar, on_batch = _progress(args)
        with open_client() as client:
            if bar is not None:
                with bar:
                    result = _dispatch(client, args, on_batch)
            else:
                result = _dispatch(client, args, on_batch)
    except (PipelineError, BraintrustError, ValueError) as exc:
        if args.verbose:
            raise
        message = getattr(exc, "message", None) if isinstance(exc, BraintrustError) else None
        print(f"error: {redact(message or str(exc))}", file=sys.stderr)
        return 1
    result["seconds"] = round(time.perf_counter() - started, 3)
    if args.json and not (args.action == "sql" and not args.out):
        print(json.dumps(result, sort_keys=True))
    else:
        for key in ("rows", "files", "bytes", "seconds"):
            print(f"{key}: {result[key]}", file=sys.stderr)
        for path in result["paths"]:
            print(f"wrote: {path}", file=sys.stderr)
    return 0



