"""`bt-dagster datasets pipeline run|pull|transform|push PIPELINE`: bt's commands over our engine.

Flags follow bt (docs/BT_COMPAT.md §1): ``--name``; source overrides
``--source-project`` (clears the id), ``--source-project-id``, ``--source-org``,
``--source-filter``; target overrides ``--target-project`` (clears the id),
``--target-project-id``, ``--target-org``, ``--target-dataset``; pull ``--limit`` (default 100,
> 0), ``--root-span-id`` (repeatable), ``--window`` (default 1d, env
``BT_DATASET_PIPELINE_WINDOW``), ``--page-size`` (default 1000); ``--max-concurrency``;
artifacts ``--root`` (default bt-sync), ``pull --out``, ``transform --in --out``,
``push --in --force``; ``--json``, ``-v``, ``-q``, ``-p/--project`` (env
``BRAINTRUST_DEFAULT_PROJECT``, the source project when the pipeline names none), ``-o/--org``.
Ours: ``--on-error fail|skip``, ``--start/--end`` (absolute ISO window, ``[start, end)``),
``--no-limit``, ``run --errors PATH``.

Output: a progress bar on a TTY (stderr; never with ``--json``/``-q``), then a summary: ``key:
value`` lines on stderr, or with ``--json`` one JSON object (sorted keys) on stdout. Errors:
exit code 1 and one line ``error: <cause>. Fix: ...`` on stderr; the traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..client import BadRequestError, BraintrustClient, BraintrustError, TransportError
from ..engine.errors import PipelineError
from ..settings import ApiSettings

# The engine (and the backend) are imported inside the functions that use them, not here: they
# bring in pydantic, asyncio and the Braintrust SDK, about 0.25 s that `bt-dagster --help`, argument
# errors and `bt-dagster local ...` would otherwise pay on every start (the CLI itself is ~0.1 s).

DEFAULT_WINDOW_ENV = "BT_DATASET_PIPELINE_WINDOW"
DEFAULT_PROJECT_ENV = "BRAINTRUST_DEFAULT_PROJECT"

log = logging.getLogger(__name__)


# -- argument parsing ---------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a positive integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be greater than 0")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", metavar="PIPELINE", help="pipeline file (.py) calling DatasetPipeline(...)")
    parser.add_argument("--name", help="the pipeline to run when the file registers several")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests and show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.add_argument(
        "-p", "--project", default=os.environ.get(DEFAULT_PROJECT_ENV) or None,
        help=f"source project when the pipeline names none (env {DEFAULT_PROJECT_ENV})",
    )
    parser.add_argument("-o", "--org", default=None, help="organization to log in to (default BRAINTRUST_ORG_NAME)")


def _add_source(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source overrides")
    group.add_argument("--source-project", help="source project name (clears the pipeline's project id)")
    group.add_argument("--source-project-id", help="source project id (used unverified)")
    group.add_argument("--source-org", help="source organization")
    group.add_argument("--source-filter", help="BTQL/SQL filter on source spans, replacing the pipeline's")


def _add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target overrides")
    group.add_argument("--target-project", help="target project name (clears the pipeline's project id)")
    group.add_argument("--target-project-id", help="target project id")
    group.add_argument("--target-org", help="target organization (default: the source org)")
    group.add_argument("--target-dataset", help="target dataset name")


def _add_pull(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pull")
    group.add_argument("--limit", type=_positive_int, default=100, help="max refs (spans or traces), default 100")
    group.add_argument("--no-limit", action="store_true", help="pull every ref in the window")
    group.add_argument(
        "--root-span-id", action="append", default=[], metavar="ID",
        help="pull only these traces (repeatable; replaces the window)",
    )
    group.add_argument(
        "--window", default=None,
        help=f"relative window: seconds or N[s|m|h|d] (default 1d, env {DEFAULT_WINDOW_ENV})",
    )
    group.add_argument("--start", help="absolute window start (ISO-8601, inclusive); overrides --window")
    group.add_argument("--end", help="absolute window end (ISO-8601, exclusive); overrides --window")
    group.add_argument("--page-size", type=_positive_int, default=1000, help="BTQL page size (max 1000)")


def _add_transform(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transform")
    group.add_argument("--max-concurrency", type=_positive_int, default=None,
                       help="transform calls in flight (default: the pipeline's max_concurrency, 8)")
    group.add_argument("--on-error", choices=("fail", "skip"), default=None,
                       help="fail on the first transform error, or skip it and record it in errors.jsonl")


def register(dsub: argparse._SubParsersAction) -> None:
    """Add ``pipeline run|pull|transform|push`` to the ``datasets`` group."""
    pipeline = dsub.add_parser(
        "pipeline", help="run dataset pipelines: source project logs -> transform -> dataset",
    )
    psub = pipeline.add_subparsers(dest="pipeline_command", required=True, metavar="STAGE")

    run = psub.add_parser("run", allow_abbrev=False, help="pull, transform and push in one streaming pass (no artifacts)")
    _add_common(run)
    _add_source(run)
    _add_target(run)
    _add_pull(run)
    _add_transform(run)
    run.add_argument("--errors", type=Path, default=None,
                     help="where --on-error skip records failing refs (default <bt-sync>/dataset_pipeline_<name>/errors.jsonl)")
    run.set_defaults(handler=_handle, stage="run")

    pull = psub.add_parser("pull", allow_abbrev=False, help="discover source refs into pulled.jsonl")
    _add_common(pull)
    _add_source(pull)
    _add_pull(pull)
    pull.add_argument("--root", default="bt-sync", help="artifact root directory (default bt-sync)")
    pull.add_argument("--out", type=Path, help="write pulled.jsonl here instead")
    pull.set_defaults(handler=_handle, stage="pull")

    transform = psub.add_parser("transform", allow_abbrev=False, help="run the transform over pulled refs")
    _add_common(transform)
    _add_source(transform)
    _add_transform(transform)
    transform.add_argument("--root", default="bt-sync", help="artifact root directory (default bt-sync)")
    transform.add_argument("--in", dest="in_path", type=Path, help="pulled.jsonl to read (default: the latest pull)")
    transform.add_argument("--out", type=Path, help="write transformed.jsonl here instead")
    transform.set_defaults(handler=_handle, stage="transform")

    push = psub.add_parser("push", allow_abbrev=False, help="upload transformed rows to the target dataset")
    _add_common(push)
    _add_target(push)
    push.add_argument("--root", default="bt-sync", help="artifact root directory (default bt-sync)")
    push.add_argument("--in", dest="in_path", type=Path, help="transformed.jsonl to push (default: the latest transform)")
    push.add_argument("--force", action="store_true", help="push again even if this content was already pushed")
    push.set_defaults(handler=_handle, stage="push")


# -- helpers ------------------------------------------------------------------------------------


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


def _window(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(window for the engine, label for the pull spec)."""
    from ..engine.window import DEFAULT_WINDOW, TimeWindow, parse_timestamp, parse_window

    if args.start or args.end:
        try:
            start = parse_timestamp(args.start) if args.start else None
            end = parse_timestamp(args.end) if args.end else None
        except ValueError as exc:
            raise CliError(f"invalid --start/--end timestamp ({exc}). Fix: use ISO-8601, e.g. 2026-01-31T00:00:00Z") from None
        try:
            return TimeWindow(start=start, end=end), None
        except ValueError as exc:
            raise CliError(f"{exc}. Fix: pass --end after --start") from None
    text = args.window if args.window is not None else (os.environ.get(DEFAULT_WINDOW_ENV) or DEFAULT_WINDOW)
    try:
        return parse_window(text), text
    except ValueError as exc:
        raise CliError(f"{exc}. Fix: use seconds or N followed by s, m, h or d (e.g. 90, 15m, 2h, 1d)") from None


def _limit(args: argparse.Namespace) -> int | None:
    return None if args.no_limit else args.limit


def _load_spec(args: argparse.Namespace):
    from ..engine.loader import load_pipeline_file, select_pipeline

    specs = load_pipeline_file(args.pipeline)
    spec = select_pipeline(specs, args.name, args.pipeline)
    update: dict[str, Any] = {}
    if hasattr(args, "source_project"):
        source = spec.source
        if not source.project_name and not source.project_id and args.project:
            source = source.with_overrides(project_name=args.project)
        update["source"] = source.with_overrides(**_source_overrides(args))
    if hasattr(args, "target_project"):
        target = spec.target.with_overrides(
            project_name=args.target_project,
            project_id=args.target_project_id,
            org_name=args.target_org,
            dataset_name=args.target_dataset,
        )
        update["target"] = target
    return spec.model_copy(update=update) if update else spec


def _open_client(org: str | None) -> BraintrustClient:
    from ..backend import open_client

    settings = ApiSettings.from_env()
    if org and settings.plane != "local" and org != settings.org_name:
        settings = replace(settings, org_name=org)
    return open_client(settings)


def _source_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "project_name": args.source_project,
        "project_id": args.source_project_id,
        "org_name": args.source_org,
        "filter": args.source_filter,
    }


def _emit(summary: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(summary, sort_keys=True, default=str))
        return
    for key in sorted(summary):
        value = summary[key]
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True, default=str)
        print(f"{key}: {value}", file=sys.stderr)


def _stage_run(args: argparse.Namespace, spec, client: BraintrustClient, progress) -> dict[str, Any]:
    from ..engine.artifacts import artifact_base_dir, artifact_name
    from ..engine.run import run_pipeline

    window, _ = _window(args)
    on_error = args.on_error or spec.options.on_error
    base = artifact_base_dir("bt-sync", artifact_name(args.name, args.pipeline))
    errors_path = None
    if on_error == "skip":
        errors_path = args.errors or base / "errors.jsonl"
    quarantine = (Path(errors_path).parent if errors_path is not None else base) / "quarantine.jsonl"
    result = run_pipeline(
        spec,
        client,
        window=window,
        limit=_limit(args),
        root_span_ids=args.root_span_id or None,
        page_size=args.page_size,
        max_concurrency=args.max_concurrency,
        on_error=on_error,
        errors_path=errors_path,
        progress=progress,
        policy=_push_policy(spec, state_root="bt-sync", quarantine_path=quarantine),
    )
    return result.summary()


def _stage_pull(args: argparse.Namespace, spec, client: BraintrustClient, progress) -> dict[str, Any]:
    from ..engine.stages import pull_stage

    window, label = _window(args)
    result = pull_stage(
        client,
        spec,
        pipeline_path=args.pipeline,
        name_flag=args.name,
        window=window,
        window_label=label,
        limit=_limit(args),
        root_span_ids=args.root_span_id or None,
        page_size=args.page_size,
        root=args.root,
        out=args.out,
        progress=progress,
        cli_project=args.project,
        cli_org=args.org,
    )
    return result.summary()


def _stage_transform(args: argparse.Namespace, spec, client: BraintrustClient, progress) -> dict[str, Any]:
    from ..engine.stages import transform_stage

    result = transform_stage(
        client,
        spec,
        pipeline_path=args.pipeline,
        name_flag=args.name,
        in_path=args.in_path,
        out=args.out,
        root=args.root,
        max_concurrency=args.max_concurrency,
        on_error=args.on_error,
        source_overrides=_source_overrides(args),
        progress=progress,
    )
    return result.summary()


def _stage_push(args: argparse.Namespace, spec, client: BraintrustClient, progress) -> dict[str, Any]:
    from ..engine.stages import push_stage

    result = push_stage(
        client,
        spec,
        pipeline_path=args.pipeline,
        name_flag=args.name,
        in_path=args.in_path,
        root=args.root,
        force=args.force,
        progress=progress,
        policy=_push_policy(spec, state_root=args.root),
    )
    return result.summary()


def _push_policy(spec, **where: Any):
    """The pipeline's push policy with the target's enforced schemas as its row check (as in Dagster)."""
    from ..datasets.schema import target_row_check
    from ..engine.policy import PushPolicy

    return PushPolicy.for_pipeline(spec, row_check=target_row_check, **where)


_STAGES = {"run": _stage_run, "pull": _stage_pull, "transform": _stage_transform, "push": _stage_push}


# -- errors -------------------------------------------------------------------------------------


def _describe_error(exc: BaseException, spec) -> str:
    """The one line printed after ``error:``."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, BraintrustError):
        return _describe_api_error(exc, spec)
    if isinstance(exc, PipelineError):
        return exc.describe()
    return f"{exc}" if str(exc) else type(exc).__name__


def _describe_api_error(exc: BraintrustError, spec) -> str:
    if isinstance(exc, BadRequestError) and (exc.endpoint or "").endswith("/btql"):
        filt = spec.source.filter if spec is not None else None
        if filt:
            return (
                f"the server rejected the source filter {filt!r}: {exc.server_message or exc.message}. "
                "Fix: correct source.filter in the pipeline (or --source-filter); it is a BTQL/SQL boolean "
                "expression such as metadata.flagged = true."
            )
        return f"{exc.message}. Fix: check --root-span-id values and the source project."
    if isinstance(exc, TransportError):
        return f"{exc.message}. Fix: check the network and BRAINTRUST_API_URL / BRAINTRUST_APP_URL."
    return exc.message


def _handle(args: argparse.Namespace) -> int:
    from .progress import make_progress, progress_enabled

    if args.verbose:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    else:  # retries are logged as warnings; without -v an error is reported as one line only
        package = logging.getLogger("pipelines_repo")
        if not package.handlers:
            package.addHandler(logging.NullHandler())
    spec = None
    try:
        spec = _load_spec(args)
        # push logs in to the target's org, the other stages to the source's
        declared_org = spec.target.org_name if args.stage == "push" else spec.source.org_name
        client = _open_client(declared_org or args.org)
        try:
            with make_progress(progress_enabled(json_output=args.json, quiet=args.quiet)) as progress:
                summary = _STAGES[args.stage](args, spec, client, progress)
            summary["plane"] = client.describe()
            summary["requests"] = client.stats.requests
        finally:
            client.close()
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one clear line
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
            tb = getattr(exc, "traceback_text", None)
            if tb:
                print(tb, file=sys.stderr)
        message = _describe_error(exc, spec)
        print(f"error: {message}", file=sys.stderr)
        return 1
    _emit(summary, args)
    return 0
