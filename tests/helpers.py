"""Plain helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "pipelines_repo" / "pipelines"


def write_pipeline(directory: Path, filename: str, body: str) -> Path:
    """Write ``body`` (dedented) to ``directory/filename``, creating the directory; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


# -- JSON AST nodes (the /btql query and filter trees the SDK and bt send) ---------------------


def ident(*name: str) -> dict:
    return {"op": "ident", "name": list(name)}


def lit(value: object) -> dict:
    return {"op": "literal", "value": value}


def cli_json(capsys, *args: str) -> dict:
    """Run `bt-dagster ARGS --json` in this process; its last stdout line, parsed (it must succeed)."""
    import json

    from pipelines_repo.cli.main import main as cli

    capsys.readouterr()
    code = cli([*args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out.strip().splitlines()[-1])
