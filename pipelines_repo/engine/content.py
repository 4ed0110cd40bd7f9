"""Content fingerprints of dataset rows, shared by the push (change-aware) and the datasets room.

``content_digest(row)`` fingerprints what a dataset row holds (``input``, ``expected``, ``metadata``,
``tags``, ``origin``), the same for a row about to be written and for the dataset's stored row, so
an unchanged row is never sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .jsonl import canonical_json

__all__ = ["CONTENT_FIELDS", "content_digest", "content_of"]

CONTENT_FIELDS = ("input", "expected", "metadata", "tags", "origin")


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's content fields, empty ones (None, {}, []) left out as Braintrust leaves them out."""
    return {field: row[field] for field in CONTENT_FIELDS if row.get(field) not in (None, {}, [])}


def content_digest(row: Mapping[str, Any]) -> bytes:
    """16 bytes identifying the row's content (see :func:`content_of`); tag order does not count."""
    content = content_of(row)
    if "tags" in content:
        content["tags"] = sorted(set(content["tags"]))
    return hashlib.blake2b(canonical_json(content).encode("utf-8"), digest_size=16).digest()
