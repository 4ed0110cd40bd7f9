"""`bt-dagster automations list|test|import`: the export automations declared next to the pipelines.

    bt-dagster automations list [--json]            name, project, type, path, format, status, last window
    bt-dagster automations test NAME                write + delete a probe object at the export path
    bt-dagster automations import --project P [--out FILE]   btql_export automations -> a declaration file

Declarations are read from ``$PIPELINES_DIR`` (default: the packaged examples), offline. ``test``
exits 1 with ``error: <where>: <cause>. Fix: <fix>`` (credentials, a missing bucket, an unreachable
endpoint); secrets never appear in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..client import BraintrustError
from ..engine.errors import PipelineError
from ..export.errors import redact


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("automations", help="export automations: list, test the destination, import from Braintrust")
    sub = group.add_subparsers(dest="automations_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="the declared export automations")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    test = sub.add_parser("test", help="write and delete a probe object at an automation's export path")
    test.add_argument("name")
    test.set_defaults(handler=_test)
    imp = sub.add_parser("import", help="write declarations from a project's /v1/project_automation btql_export entries")
    imp.add_argument("--project", "-p", required=True)
    imp.add_argument("--out", help="the .py file to write (default: <pipelines dir>/<project>_automations.py)")
    imp.set_defaults(handler=_import)


def _declared() -> tuple[list[Any], list[Any], Path]:
    from ..engine.loader import discover_declarations
    from ..export.automation import ExportAutomationSpec
    from ..orchestration.compiler import default_pipelines_dir

    directory = default_pipelines_dir()
    found = discover_declarations(directory)
    return [d for d in found.declarations if isinstance(d, ExportAutomationSpec)], found.errors, directory


def _list(args: argparse.Namespace) -> int:
    from ..orchestration.exports import last_exported

    specs, errors, _ = _declared()
    rows = []
    for spec in specs:
        last = last_exported(spec) or {}
        rows.append({"name": spec.name, "project": spec.project, "type": spec.kind, "path": redact(spec.export_path),
                     "format": spec.format, "status": spec.status, "last_window": last.get("window")})
    if args.json:
        print(json.dumps(rows, sort_keys=True))
    else:
        from .tables import print_table

        print_table([{k: v or "-" for k, v in r.items()} for r in rows])
    for error in errors:
        print(f"warning: {error}", file=sys.stderr)
    return 0


def _find(name: str) -> Any:
    from ..orchestration.translator import sanitize_name

    specs, _, directory = _declared()
    for spec in specs:
        if spec.name == name or sanitize_name(spec.name) == sanitize_name(name):
            return spec
    known = ", ".join(s.name for s in specs) or "none"
    raise PipelineError(f"no export automation named {name!r} in {directory}", fix=f"use one of: {known}")


def _test(args: argparse.Namespace) -> int:
    from ..export.probe import probe_destination

    try:
        spec = _find(args.name)
        result = probe_destination(spec.resolved_path())
    except PipelineError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(f"ok: wrote and deleted {result.probe} ({result.seconds:.2f} s)")
    return 0


def _import(args: argparse.Namespace) -> int:
    from ..backend import open_client
    from ..export.automation_import import list_project_automations, render_declarations
    from ..orchestration.compiler import default_pipelines_dir
    from ..orchestration.translator import sanitize_name

    try:
        with open_client() as client:
            project = client.get_project(name=args.project)
            if project is None:
                raise PipelineError(f"project {args.project!r} does not exist", fix="check --project")
            entries = list_project_automations(client, project["id"])
    except (PipelineError, BraintrustError) as exc:
        print(f"error: {redact(getattr(exc, 'message', None) or str(exc))}", file=sys.stderr)
        return 1
    text, skipped = render_declarations(args.project, entries)
    out = Path(args.out) if args.out else default_pipelines_dir() / f"{sanitize_name(args.project)}_automations.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    imported = len(entries) - len(skipped)
    print(f"wrote {out}: {imported} export automation(s)" + (f"; skipped {', '.join(skipped)}" if skipped else ""))
    return 0
