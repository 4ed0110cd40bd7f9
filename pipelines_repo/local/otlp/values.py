"""Attribute helpers shared by the mappings: JSON strings, flattened keys, taking keys off a span.

OTel attribute values are flat (strings, numbers, bools, arrays), so conventions carry structure
either as a JSON string (`braintrust.metadata = '{"a": 1}'`) or as flattened keys
(`braintrust.metadata.a = 1`, `gen_ai.prompt.0.role = "user"`). Mappings *take* the keys they
translate (pop them), so whatever is left over becomes metadata.
"""

from __future__ import annotations

import json
from typing import Any

MISSING: Any = object()


def parse_json(value: Any) -> Any:
    """The JSON a string holds, else MISSING (not a string, or not valid JSON)."""
    if not isinstance(value, str):
        return MISSING
    try:
        return json.loads(value)
    except ValueError:
        return MISSING


def take_prefixed(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Pop every `<prefix><rest>` key; return `{rest: value}`."""
    keys = [k for k in attrs if k.startswith(prefix) and len(k) > len(prefix)]
    return {k[len(prefix):]: attrs.pop(k) for k in keys}


def _listify(node: Any) -> Any:
    """Dicts keyed 0..n-1 (from `x.0.role`, `x.1.role`) become lists, recursively."""
    if not isinstance(node, dict):
        return node
    node = {k: _listify(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node) and sorted(int(k) for k in node) == list(range(len(node))):
        return [node[str(i)] for i in range(len(node))]
    return node


def unflatten(flat: dict[str, Any]) -> Any:
    """`{"0.role": "user", "0.content": "hi"}` -> `[{"role": "user", "content": "hi"}]`."""
    root: dict[str, Any] = {}
    for path, value in flat.items():
        node = root
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _listify(root)


def deep_merge(base: Any, top: Any) -> Any:
    """`top` over `base`; dicts merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(top, dict):
        merged = dict(base)
        for key, value in top.items():
            merged[key] = deep_merge(merged[key], value) if key in merged else value
        return merged
    return top
