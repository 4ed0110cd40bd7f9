"""Field-level diffs between two versions of a dataset.

    diff_versions(old_rows, new_rows) -> DatasetDiff     # each an iterable of rows, any order

Rows are compared by id on their content (``input``, ``expected``, ``metadata``, ``tags``, ``origin``);
only a 16-byte digest per id is kept while both sides stream, and the full rows of modified ids
only, so a diff of two large versions holds little in memory. Each modified row gets an RFC 6902
JSON Patch (``jsonpatch``) that turns the old content into the new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .ids import content_digest, content_of

__all__ = ["DatasetDiff", "diff_versions", "json_patch"]


@dataclass
class DatasetDiff:
    from_version: str | None
    to_version: str | None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[dict[str, Any]] = field(default_factory=list)  # {"id", "patch": [ops]}

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.from_version, "to": self.to_version, "added": self.added,
                "removed": self.removed, "modified": self.modified}


def json_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning ``old`` into ``new``."""
    import jsonpatch

    return jsonpatch.make_patch(dict(old), dict(new)).patch


def diff_versions(
    old_rows: Iterable[Mapping[str, Any]],
    new_rows: Iterable[Mapping[str, Any]],
    *,
    from_version: str | None = None,
    to_version: str | None = None,
    fetch_rows: Callable[[list[str], str], Iterable[Mapping[str, Any]]] | None = None,
) -> DatasetDiff:
    """Compare two versions. With ``fetch_rows(ids, side)`` ("from"/"to"), modified rows are fetched
    again by id instead of being kept while streaming."""
    old: dict[str, bytes] = {}
    kept_old: dict[str, dict[str, Any]] = {}
    for row in old_rows:
        old[row["id"]] = content_digest(row)
        if fetch_rows is None:
            kept_old[row["id"]] = content_of(row)
    result = DatasetDiff(from_version, to_version)
    modified_new: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for row in new_rows:
        row_id = row["id"]
        seen.add(row_id)
        digest = old.get(row_id)
        if digest is None:
            result.added.append(row_id)
        elif digest != content_digest(row):
            modified_new[row_id] = content_of(row)
    result.removed = sorted(row_id for row_id in old if row_id not in seen)
    result.added.sort()
    ids = sorted(modified_new)
    if fetch_rows is not None and ids:
        kept_old = {row["id"]: content_of(row) for row in fetch_rows(ids, "from")}
    result.modified = [{"id": row_id, "patch": json_patch(kept_old.get(row_id, {}), modified_new[row_id])} for row_id in ids]
    return result
