"""SQLite storage for the local data plane, with Braintrust's row semantics.

Every write request gets one `_xact_id`. Rows are versioned: a write appends a version of each
touched row and clears `head` on the one it supersedes, so a read pinned at version V sees, per
id, the newest version with `xact_id <= V`. See docs/ARCHITECTURE.md for the schema.

`LocalStore` is composed by concern: `db` (the file, connections, errors), `objects` (projects
and datasets), `writes` (versioned row writes), `versions` (snapshots, history, restore) `reads` (queries,
paging, pinned versions) and `automations` (`/v1/project_automation` objects).
"""

from __future__ import annotations

from .automations import Automations
from .db import ORG_ID, ORG_NAME, BadInput, NotFound, StoreError, now_iso, pagination_key
from .reads import MAX_PAGE, QueryPage, Reads, decode_cursor, encode_cursor
from .versions import Versions
from .experiments import Experiments

__all__ = [
    "MAX_PAGE", "ORG_ID", "ORG_NAME", "BadInput", "LocalStore", "NotFound", "QueryPage", "StoreError",
    "decode_cursor", "encode_cursor", "now_iso", "pagination_key",
]


class LocalStore(Experiments, Versions, Reads, Automations):
    """Projects, datasets and versioned rows in one SQLite file."""
