"""BTQL queries in bt's JSON AST: the builders, counted paging and the newest-``_xact_id`` query.

Every ``/btql`` query the engine sends is built here or from these parts:

- :func:`ident`, :func:`literal`, :func:`in_filter`: expression nodes;
- :func:`project_logs_from` (``project_logs(<id>)`` with a ``shape``) and :func:`dataset_from`
  (``dataset(<id>)``): the ``from`` clauses;
- :func:`btql_pages`: ``client.iter_btql_pages`` with every call counted in a
  :class:`QueryCounter`, so stages can report their own request numbers even when several
  stages share one client;
- :func:`max_xact`: the newest ``_xact_id`` of any ``from`` (one query, ``limit 1``); a
  dataset's version after a push and the late-data sensor's first cursor;
- :func:`parse_xact`: an ``_xact_id`` (or a cursor) as an int.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import BraintrustClient
from ..client.http import MAX_PAGE_SIZE

__all__ = [
    "QueryCounter",
    "btql_pages",
    "dataset_from",
    "experiment_from",
    "ident",
    "in_filter",
    "literal",
    "max_xact",
    "parse_xact",
    "project_logs_from",
]


@dataclass
class QueryCounter:
    """``/btql`` calls made by one stage: ``requests`` (logical calls; client retries are in
    ``client.stats``), ``pages`` (non-empty pages) and ``rows`` received. Thread-safe."""

    requests: int = 0
    pages: int = 0
    rows: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, pages: int = 0, rows: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.pages += pages
            self.rows += rows


# -- JSON AST nodes ---------------------------------------------------------------------------


def ident(*path: str) -> dict[str, Any]:
    return {"op": "ident", "name": list(path)}


def literal(value: Any) -> dict[str, Any]:
    return {"op": "literal", "value": value}


def in_filter(field_name: str, values: Sequence[str]) -> dict[str, Any]:
    return {"op": "in", "left": ident(field_name), "right": literal(list(values))}


def project_logs_from(project_id: str, shape: str = "spans") -> dict[str, Any]:
    return {"op": "function", "name": ident("project_logs"), "args": [literal(project_id)], "shape": shape}


def dataset_from(dataset_id: str) -> dict[str, Any]:
    return {"op": "function", "name": ident("dataset"), "args": [literal(dataset_id)]}


def experiment_from(experiment_id: str) -> dict[str, Any]:
    return {"op": "function", "name": ident("experiment"), "args": [literal(experiment_id)]}


# -- running queries --------------------------------------------------------------------------


def btql_pages(
    client: BraintrustClient,
    query: Mapping[str, Any],
    *,
    page_limit: int | Callable[[], int] = MAX_PAGE_SIZE,
    counter: QueryCounter | None = None,
    **options: Any,
) -> Iterator[list[dict[str, Any]]]:
    """``client.iter_btql_pages`` with every call counted in ``counter`` (for stage metadata)."""
    on_page = None
    if counter is not None:
        def on_page(rows: int) -> None:
            counter.add(requests=1, pages=1 if rows else 0, rows=rows)
    return client.iter_btql_pages(dict(query), page_size=page_limit, on_page=on_page, **options)


def parse_xact(value: Any) -> int | None:
    """An ``_xact_id`` (a numeric string or an int) as an int; None when it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def max_xact(client: BraintrustClient, from_: Mapping[str, Any], *, query_source: str) -> int | None:
    """The newest ``_xact_id`` in ``from_`` (one ``/btql`` query), None when it has no rows."""
    query = {
        "select": [{"alias": "_xact_id", "expr": ident("_xact_id")}],
        "from": dict(from_),
        "sort": [{"expr": ident("_xact_id"), "dir": "desc"}],
        "limit": 1,
    }
    rows = client.btql(query, query_source=query_source).get("data") or []
    return parse_xact(rows[0].get("_xact_id")) if rows else None
