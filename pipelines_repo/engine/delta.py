"""Change-aware pushes: compare each batch with the dataset's current rows before it is sent.

    ChangeFilter(client, dataset_id, *, on_conflict="overwrite", previous_version=None,
                 kept_ids=(), counter=None).decide(rows) -> list[Decision]

For each batch, ONE ``/btql`` query (``filter id IN [...]``, <= 1000 ids) fetches the stored rows;
a row whose content digest (``engine.content``) equals the stored one is ``unchanged`` and not
sent; the others are ``added`` or ``updated``. So re-pushing a window that changed nothing sends
nothing, and the dataset gets no new version.

``on_conflict="keep_curated"`` also reads the same ids *as of* ``previous_version`` (the version
this pipeline's previous push produced; see ``engine.pushstate``) and keeps (does not send) a row

- whose current row differs from the row at ``previous_version`` (someone edited it since, or
  created it under this id), or
- that existed at ``previous_version`` and is gone now (someone deleted it), or
- whose id is in ``kept_ids`` (kept by an earlier push: once curated, a row stays curated, even
  after later pushes move ``previous_version`` past the edit).

Without a ``previous_version`` (the pipeline's first push) nothing can be told apart from the
pipeline's own writes, so ``keep_curated`` behaves like ``overwrite`` (bt's behaviour).

A dataset with no live row (a new one, the common first push) needs no lookups: one newest-xact
query before the first batch tells, and every row is ``added`` (a push's ids are unique). Not
with ``keep_curated`` and a previous version, where an empty dataset means rows were deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from ..client import BraintrustClient
from .btql import QueryCounter, dataset_from, ident, in_filter, max_xact
from .content import content_digest

__all__ = ["LOOKUP_FIELDS", "ChangeCounts", "ChangeFilter", "Decision", "OnConflict"]

OnConflict = Literal["overwrite", "keep_curated"]
Decision = Literal["added", "updated", "unchanged", "kept"]
LOOKUP_FIELDS = ("id", "input", "expected", "metadata", "tags", "origin", "_xact_id")
QUERY_SOURCE = "bt_dagster_push_compare"
MAX_LOOKUP_IDS = 1000


@dataclass
class ChangeCounts:
    """Rows of a push by what the comparison decided (``kept``: curated rows left as they are)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0

    def count(self, decision: Decision) -> None:
        setattr(self, decision, getattr(self, decision) + 1)

    def add(self, other: ChangeCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def sent(self) -> int:
        return self.added + self.updated


def lookup_rows(
    client: BraintrustClient,
    dataset_id: str,
    ids: Sequence[str],
    *,
    version: str | None = None,
    counter: QueryCounter | None = None,
    fields: Sequence[str] = LOOKUP_FIELDS,
) -> dict[str, dict[str, Any]]:
    """The stored rows among ``ids`` (<= 1000), at head or as of ``version``: one query, unsorted
    (the rows come back keyed by id, so no order is needed)."""
    if len(ids) > MAX_LOOKUP_IDS:
        raise ValueError(f"at most {MAX_LOOKUP_IDS} ids per lookup")
    if not ids:
        return {}
    # Ids are unique, so a page as large as the id list holds every match: one request, no cursor.
    query = {
        "select": [{"alias": name, "expr": ident(name)} for name in fields],
        "from": dataset_from(dataset_id),
        "filter": in_filter("id", list(ids)),
        "limit": len(ids),
    }
    options: dict[str, Any] = {"query_source": QUERY_SOURCE}
    if version is not None:
        options["version"] = str(version)
    rows = client.btql(query, **options).get("data") or []
    if counter is not None:
        counter.add(requests=1, pages=1 if rows else 0, rows=len(rows))
    return {row["id"]: row for row in rows}


def _digest(row: Mapping[str, Any] | None) -> bytes | None:
    return None if row is None else content_digest(row)


class ChangeFilter:
    """Decides, batch by batch, which rows to send (see the module doc). ``newly_kept`` collects
    the ids this push kept as curated, for the pipeline's push state."""

    def __init__(
        self,
        client: BraintrustClient,
        dataset_id: str,
        *,
        on_conflict: OnConflict = "overwrite",
        previous_version: str | None = None,
        kept_ids: Iterable[str] = (),
        counter: QueryCounter | None = None,
    ):
        self.client = client
        self.dataset_id = dataset_id
        self.keep_curated = on_conflict == "keep_curated"
        self.previous_version = previous_version if self.keep_curated else None
        self.kept_ids = set(kept_ids) if self.keep_curated else set()
        self.counter = counter if counter is not None else QueryCounter()
        self.newly_kept: set[str] = set()
        self._empty: bool | None = None  # known after the first batch (see the module doc)

    def _dataset_is_empty(self) -> bool:
        if self._empty is None:
            if self.previous_version is not None:
                self._empty = False  # keep_curated: an empty dataset may mean deleted rows
            else:
                self.counter.add(requests=1)
                self._empty = max_xact(self.client, dataset_from(self.dataset_id), query_source=QUERY_SOURCE) is None
        return self._empty

    def decide(self, rows: Sequence[Mapping[str, Any]]) -> list[Decision]:
        if self._dataset_is_empty() and not self.kept_ids:
            return ["unchanged" if row.get("_object_delete") else "added" for row in rows]
        ids = [row["id"] for row in rows]
        heads = lookup_rows(self.client, self.dataset_id, ids, counter=self.counter)
        before = None
        if self.previous_version is not None:
            before = lookup_rows(self.client, self.dataset_id, ids, version=self.previous_version, counter=self.counter)
        decisions: list[Decision] = []
        for row in rows:
            decision = self._decide(row, heads.get(row["id"]), before)
            if decision == "kept":
                self.newly_kept.add(row["id"])
            decisions.append(decision)
        return decisions

    def _decide(
        self, row: Mapping[str, Any], head: Mapping[str, Any] | None, before: Mapping[str, dict[str, Any]] | None
    ) -> Decision:
        row_id = row["id"]
        if row_id in self.kept_ids:
            return "kept"
        if head is not None and not row.get("_object_delete") and _digest(head) == _digest(row):
            # what we would send is already there: ours (e.g. sent by a push interrupted before it
            # recorded its version), not a curated edit
            return "unchanged"
        if before is not None:
            previous = before.get(row_id)
            if previous is not None and head is None:
                return "kept"  # deleted by someone since our last push
            if head is not None and _digest(head) != _digest(previous):
                return "kept"  # edited (or created under this id) by someone since our last push
        if row.get("_object_delete"):
            return "unchanged" if head is None else "updated"
        if head is None:
            return "added"
        return "unchanged" if _digest(head) == _digest(row) else "updated"
