"""Plain-text output of the dataset commands: summaries, row lists and diffs (table, json, jsonl, md)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ..datasets.diff import DatasetDiff


def _cell(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: list[dict[str, Any]], stream=None) -> None:
    stream = stream or sys.stdout
    if not rows:
        print("(none)", file=stream)
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_cell(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths)), file=stream)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=stream)


def print_summary(result: dict[str, Any]) -> None:
    """Lists of objects become tables on stdout; every other field a ``key: value`` line on stderr."""
    for key in sorted(result):
        value = result[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            print(f"{key}:", file=sys.stderr)
            print_table(value)
        elif value is not None and value != [] and value != {}:
            print(f"{key}: {_cell(value, 200)}", file=sys.stderr)


def print_diff(diff: DatasetDiff, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(diff.to_dict(), sort_keys=True))
        return
    if fmt == "jsonl":
        for row_id in diff.added:
            print(json.dumps({"change": "added", "id": row_id}))
        for row_id in diff.removed:
            print(json.dumps({"change": "removed", "id": row_id}))
        for item in diff.modified:
            print(json.dumps({"change": "modified", **item}, sort_keys=True))
        return
    head = f"{diff.from_version} -> {diff.to_version}: {len(diff.added)} added, {len(diff.removed)} removed, {len(diff.modified)} modified"
    if fmt == "md":
        print(f"**{head}**\n\n| change | id | field | op | value |\n|---|---|---|---|---|")
        for row_id in diff.added:
            print(f"| added | `{row_id}` | | | |")
        for row_id in diff.removed:
            print(f"| removed | `{row_id}` | | | |")
        for item in diff.modified:
            for op in item["patch"]:
                value = _cell(op.get("value", ""), 80).replace("|", "\\|")
                print(f"| modified | `{item['id']}` | `{op['path']}` | {op['op']} | {value} |")
        return
    print(head)
    rows = [{"change": "added", "id": r} for r in diff.added] + [{"change": "removed", "id": r} for r in diff.removed]
    for item in diff.modified:
        for op in item["patch"]:
            rows.append({"change": "modified", "id": item["id"], "path": op["path"], "op": op["op"], "value": op.get("value", "")})
    if rows:
        print_table(rows)
