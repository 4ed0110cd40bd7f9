"""What to export, as a stream of row batches read through the client's BTQL paging.

    SpanSource(project_id, filter_sql=None, window=None)        one row per span
    TraceSource(project_id, filter_sql=None, window=None)       one row per trace, rolled up (rollup.py)
    QuerySource(text)                                           a SQL or BTQL query as written
    DatasetSource(dataset_id, version=None, filter_sql=None)    a dataset at head or a pinned version
    ExperimentSource(experiment_id, filter_sql=None)            an experiment's rows (every span of every case)

Each has ``name`` (the default file stem), ``columns`` (the fixed columns of the CSV and Parquet
schemas) and ``batches(client, batch_size)``. Names are resolved by the caller (the CLI or an
asset): a source takes ids and an ``_xact_id`` version, so it can run once per window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..client import BraintrustClient
from ..engine.btql import btql_pages, dataset_from, experiment_from, ident, project_logs_from
from ..engine.window import TimeWindow, combine_filter_parts
from .errors import ExportOptionsError
from .rollup import roll_up

__all__ = ["DATASET_COLUMNS", "DatasetSource", "EXPERIMENT_COLUMNS", "ExperimentSource", "QuerySource", "SPAN_COLUMNS", "SpanSource", "TRACE_COLUMNS", "TraceSource"]

QUERY_SOURCE = "bt_dagster_export"
SPAN_COLUMNS = (
    "id", "_xact_id", "created", "_pagination_key", "project_id", "root_span_id", "span_id", "span_parents",
    "is_root", "span_attributes", "input", "output", "expected", "error", "scores", "metrics", "metadata", "tags",
    "comments", "context", "origin",
)
TRACE_COLUMNS = (*SPAN_COLUMNS, "span_count")
DATASET_COLUMNS = (
    "id", "_xact_id", "created", "_pagination_key", "project_id", "dataset_id", "root_span_id", "span_id", "is_root",
    "input", "expected", "metadata", "tags", "comments", "origin",
)
# An experiment's rows are spans (task, scorers) plus the experiment_id routing field.
EXPERIMENT_COLUMNS = (
    "id", "_xact_id", "created", "_pagination_key", "project_id", "experiment_id", "root_span_id", "span_id",
    "span_parents", "is_root", "span_attributes", "input", "output", "expected", "error", "scores", "metrics",
    "metadata", "tags", "comments", "context", "origin",
)
# The SQL result's fields are unknown up front: CSV takes them from the first batch; Parquet
# stores each row under these columns plus `_extra`.
QUERY_COLUMNS = ("id", "_xact_id", "created")


def _filter(window: TimeWindow | None, filter_sql: str | None) -> dict[str, Any] | None:
    parts: list[dict[str, Any]] = []
    if window is not None:
        parts.append(window.filter_part())
    if filter_sql and filter_sql.strip():
        parts.append({"btql": filter_sql.strip()})
    return combine_filter_parts(parts) if parts else None


def _query(from_: dict[str, Any], filter_: dict[str, Any] | None) -> dict[str, Any]:
    query: dict[str, Any] = {"select": [{"op": "star"}], "from": from_,
                             "sort": [{"expr": ident("_pagination_key"), "dir": "asc"}]}
    if filter_ is not None:
        query["filter"] = filter_
    return query


@dataclass
class SpanSource:
    project_id: str
    filter_sql: str | None = None
    window: TimeWindow | None = None
    name: str = "spans"
    columns: tuple[str, ...] = SPAN_COLUMNS

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        query = _query(project_logs_from(self.project_id, "spans"), _filter(self.window, self.filter_sql))
        yield from btql_pages(client, query, page_limit=batch_size, query_source=QUERY_SOURCE)


@dataclass
class TraceSource:
    """Whole traces (``shape: traces``: every span of each trace with a matching span), each rolled
    up into one row as it completes; a page holds whole traces, so memory is one page."""

    project_id: str
    filter_sql: str | None = None
    window: TimeWindow | None = None
    traces_per_page: int = 100
    name: str = "traces"
    columns: tuple[str, ...] = TRACE_COLUMNS

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        query = _query(project_logs_from(self.project_id, "traces"), _filter(self.window, self.filter_sql))
        pending: list[dict[str, Any]] = []
        # A `traces` page holds whole traces (its limit counts traces), so each page rolls up alone.
        for page in btql_pages(client, query, page_limit=self.traces_per_page, query_source=QUERY_SOURCE):
            groups: dict[str, list[dict[str, Any]]] = {}
            for span in page:
                groups.setdefault(span.get("root_span_id") or span.get("id"), []).append(span)
            pending.extend(roll_up(spans) for spans in groups.values())
            if len(pending) >= batch_size:
                yield pending
                pending = []
        if pending:
            yield pending


_TRAILING_LIMIT = re.compile(r"\blimit\s*:?\s*(\d+)\s*;?\s*$", re.IGNORECASE)
# The first clause of a BTQL pipe query (anything else is SQL text).
PIPE_CLAUSE = re.compile(r"^\s*(select|from|filter|sort|limit|cursor|dimensions|measures|unpivot)\s*:", re.IGNORECASE)


@dataclass
class QuerySource:
    """SQL or BTQL text as the user wrote it. With no ``LIMIT`` (or one above a page), pages are
    followed through the ``x-bt-cursor`` cursor, sent back as ``OFFSET '<cursor>'`` (SQL) or a
    ``cursor:`` clause (BTQL); with ``LIMIT n`` it stops after ``n`` rows."""

    text: str
    options: dict[str, Any] | None = None
    name: str = "query"
    columns: tuple[str, ...] = QUERY_COLUMNS

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        text = self.text.strip().rstrip(";")
        if not text:
            raise ExportOptionsError("the query", "is empty", "write e.g. SELECT * FROM project_logs('<id>')")
        found = _TRAILING_LIMIT.search(text)
        wanted = int(found.group(1)) if found else None
        pipe = bool(PIPE_CLAUSE.match(text))
        cursor, done = None, 0
        options = {"query_source": QUERY_SOURCE, **(self.options or {})}
        while True:
            query = text if cursor is None else (f"{text} | cursor: '{cursor}'" if pipe else f"{text} OFFSET '{cursor}'")
            body = client.btql(query, fmt="json", **options)
            rows = body.get("data") or []
            if wanted is not None:
                rows = rows[: wanted - done]
            done += len(rows)
            if rows:
                yield rows
            cursor = body.get("cursor")
            if not rows or not cursor or (wanted is not None and done >= wanted):
                return


@dataclass
class DatasetSource:
    dataset_id: str
    version: str | None = None  # an _xact_id (a snapshot is resolved to its xact by the caller)
    filter_sql: str | None = None
    name: str = "dataset"
    columns: tuple[str, ...] = DATASET_COLUMNS

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        query = _query(dataset_from(self.dataset_id), _filter(None, self.filter_sql))
        options: dict[str, Any] = {"query_source": QUERY_SOURCE}
        if self.version is not None:
            options["version"] = str(self.version)
        yield from btql_pages(client, query, page_limit=batch_size, **options)


@dataclass
class ExperimentSource:
    """Every row of one experiment at head (Braintrust's ``experiment('<id>')``), paged like a dataset."""

    experiment_id: str
    filter_sql: str | None = None
    name: str = "experiment"
    columns: tuple[str, ...] = EXPERIMENT_COLUMNS

    def batches(self, client: BraintrustClient, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        query = _query(experiment_from(self.experiment_id), _filter(None, self.filter_sql))
        yield from btql_pages(client, query, page_limit=batch_size, query_source=QUERY_SOURCE)
