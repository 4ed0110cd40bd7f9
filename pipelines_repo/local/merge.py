"""Braintrust's row merge rules (`_is_merge`), as the SDK applies them client-side.

Objects merge recursively; top-level `tags` are set-unioned; every other array and scalar is
replaced, and an explicit null overwrites. `_merge_paths` names paths where merging stops and the
new value replaces the old one; `_array_delete` removes values from arrays.
"""

from __future__ import annotations

import copy
from typing import Any

SET_UNION_FIELDS = frozenset({"tags"})


def merge_row(existing: dict[str, Any], update: dict[str, Any], merge_paths: list[list[str]] | None = None) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `existing`."""
    stop_paths = {tuple(p) for p in (merge_paths or [])}
    merged = copy.deepcopy(existing)
    _merge_into(merged, update, (), stop_paths)
    return merged


def _merge_into(target: dict[str, Any], update: dict[str, Any], path: tuple[str, ...], stop_paths: set[tuple[str, ...]]) -> None:
    for key, value in update.items():
        here = path + (key,)
        current = target.get(key)
        if here in stop_paths:
            target[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(current, dict):
            _merge_into(current, value, here, stop_paths)
        elif not path and key in SET_UNION_FIELDS and isinstance(value, list) and isinstance(current, list):
            target[key] = current + [v for v in value if v not in current]
        else:
            target[key] = copy.deepcopy(value)


def apply_array_deletes(row: dict[str, Any], deletes: list[dict[str, Any]] | None) -> None:
    """Remove the listed values from arrays at the given paths (`_array_delete`)."""
    for spec in deletes or []:
        path = spec.get("path") or []
        node: Any = row
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path and isinstance(node.get(path[-1]), list):
            doomed = spec.get("delete") or []
            node[path[-1]] = [v for v in node[path[-1]] if v not in doomed]
