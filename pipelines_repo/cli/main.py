"""`bt-dagster`: the bt-compatible pipeline and dataset commands, and the local data plane commands."""

from __future__ import annotations

import argparse
import sys

from ..evals import loading as _eval_loading  # noqa: F401 - registers the loader's eval-safe file hook
from . import automations, datasets, export, first_run, local, pipeline, retention


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bt-dagster",
        description="Braintrust dataset pipelines on Dagster, and a Braintrust-compatible local data plane.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    local.register(commands)
    group = commands.add_parser("datasets", help="dataset commands: bt's, plus upload, schema, versions, diff, copy")
    dsub = group.add_subparsers(dest="datasets_command", required=True, metavar="SUBCOMMAND")
    pipeline.register(dsub)
    datasets.register(dsub)
    export.register(commands)
    automations.register(commands)
    retention.register(commands)
    first_run.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
