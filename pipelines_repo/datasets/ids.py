"""Row ids and content fingerprints for uploads.

A row without an id gets one derived from its ``input`` alone (uuid5 of the input's canonical JSON), so
uploading the same file again, or one whose ``expected`` was edited, updates those rows in place
instead of adding copies (bt's ``datasets create`` gives each such row a random UUID). Two rows
with the same input and no id therefore share an id, and the last one wins.

``content_of`` / ``content_digest`` (the row's content fingerprint) live in ``engine.content``, because
the pipeline push compares rows too; they are re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..engine.content import CONTENT_FIELDS, content_digest, content_of
from ..engine.jsonl import canonical_json

__all__ = ["CONTENT_FIELDS", "UPLOAD_ID_NAMESPACE", "content_digest", "content_of", "input_id"]

# Fixed forever: changing it would give every id-less row of every dataset a new id.
UPLOAD_ID_NAMESPACE = uuid.UUID("5b0e9c5e-2f8a-4b7e-9d55-3c1f0c2d7a41")


def input_id(row: Mapping[str, Any]) -> str:
    """The deterministic id of an id-less row: uuid5 over its input's canonical JSON."""
    return str(uuid.uuid5(UPLOAD_ID_NAMESPACE, "input:" + canonical_json(row.get("input"))))
