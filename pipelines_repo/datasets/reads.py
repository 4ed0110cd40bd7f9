"""Reading a dataset's rows over ``/btql``: all of them (at a version, optionally filtered), or by id.

    iter_rows(client, dataset_id, *, version=None, filter_sql=None, fields=ROW_FIELDS) -> Iterator[dict]
    rows_by_id(client, dataset_id, ids, *, version=None) -> dict[id, row]    # pages of ids, one query each

Both read through the engine's BTQL helpers, so they work the same on Braintrust and on the local
plane, and a filter is sent as BTQL text for the server to parse (never pasted into a query here).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..client import BraintrustClient
from ..engine.btql import btql_pages, dataset_from, ident
from ..engine.delta import MAX_LOOKUP_IDS, lookup_rows
from ..engine.window import combine_filter_parts

__all__ = ["ROW_FIELDS", "iter_rows", "rows_by_id"]

ROW_FIELDS = ("id", "input", "expected", "metadata", "tags", "origin", "_xact_id", "created")


def _query(dataset_id: str, fields: Sequence[str], filter_: dict[str, Any] | None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "select": [{"alias": name, "expr": ident(name)} for name in fields],
        "from": dataset_from(dataset_id),
        "sort": [{"expr": ident("_pagination_key"), "dir": "asc"}],
    }
    if filter_ is not None:
        query["filter"] = filter_
    return query


def _options(version: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {"query_source": "bt_dagster_datasets"}
    if version is not None:
        options["version"] = str(version)
    return options


def iter_rows(
    client: BraintrustClient,
    dataset_id: str,
    *,
    version: str | None = None,
    filter_sql: str | None = None,
    fields: Sequence[str] = ROW_FIELDS,
) -> Iterator[dict[str, Any]]:
    """Every row of the dataset (as of ``version``; matching ``filter_sql``), page by page."""
    filter_ = combine_filter_parts([{"btql": filter_sql.strip()}]) if filter_sql and filter_sql.strip() else None
    for page in btql_pages(client, _query(dataset_id, fields, filter_), **_options(version)):
        yield from page


def rows_by_id(
    client: BraintrustClient,
    dataset_id: str,
    ids: Iterable[str],
    *,
    version: str | None = None,
    fields: Sequence[str] = ROW_FIELDS,
) -> dict[str, dict[str, Any]]:
    """The stored rows among ``ids`` (absent ids are not in the result): the engine's lookup, one
    query per 1000 ids."""
    found: dict[str, dict[str, Any]] = {}
    ids = list(ids)
    for start in range(0, len(ids), MAX_LOOKUP_IDS):
        found.update(lookup_rows(client, dataset_id, ids[start : start + MAX_LOOKUP_IDS], version=version, fields=fields))
    return found
