"""Row ids and content fingerprints for uploads.

A row without an id gets one derived from its ``input`` alone (uuid5 of the input's canonical JSON), so
uploading the same file again, or one whose ``expected`` was edited, updates those rows in place
instead of adding copies (bt's ``datasets create`` gives each such row a random UUID). Two rows
with the same input and no id therefore share an id, and the last one wins.

``content_digest(row)`` fingerprints what a dataset row holds (``input``, ``expected``, ``metadata``,
``tags``, ``origin``), the same for a row about to be written and for the dataset's stored row, so
an unchanged row is never sent again.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from ..engine.jsonl import canonical_json

__all__ = ["CONTENT_FIELDS", "UPLOAD_ID_NAMESPACE", "content_digest", "content_of", "input_id"]

CONTENT_FIELDS = ("input", "expected", "metadata", "tags", "origin")
# Fixed forever: changing it would give every id-less row of every dataset a new id.
UPLOAD_ID_NAMESPACE = uuid.UUID("5b0e9c5e-2f8a-4b7e-9d55-3c1f0c2d7a41")


def input_id(row: Mapping[str, Any]) -> str:
    """The deterministic id of an id-less row: uuid5 over its input's canonical JSON."""
    return str(uuid.uuid5(UPLOAD_ID_NAMESPACE, "input:" + canonical_json(row.get("input"))))


def content_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row's content fields, empty ones (None, {}, []) left out as Braintrust leaves them out."""
    return {field: row[field] for field in CONTENT_FIELDS if row.get(field) not in (None, {}, [])}


def content_digest(row: Mapping[str, Any]) -> bytes:
    """16 bytes identifying the row's content (see :func:`content_of`); tag order does not count."""
    content = content_of(row)
    if "tags" in content:
        content["tags"] = sorted(set(content["tags"]))
    return hashlib.blake2b(canonical_json(content).encode("utf-8"), digest_size=16).digest()
