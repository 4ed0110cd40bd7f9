"""Change scanning: which rows of a source project were added or changed after an ``_xact_id``.

:func:`scan_changes` asks the source project, over ``/btql``, for rows with ``_xact_id > after``
and ``created >= since``, in span scope also matching the pipeline's filter (in trace scope the
filter is not applied: a new span can change any trace's transform output), sorted by
``_xact_id`` ascending, at most ``max_pages`` pages of ``page_size`` rows per scan (so a scan stays
short whatever the backlog; the rest is read by the next scan). The result's ``cursor`` is the
highest ``_xact_id`` fully processed: when a scan stops inside a transaction, the rest of it is
read again next time. The late-data sensor (``orchestration/automation.py``) maps the changed
rows' ``created`` to partitions; its first cursor is :func:`engine.btql.max_xact` of the source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..client import BraintrustClient
from .btql import btql_pages, ident, parse_xact, project_logs_from
from .pull import ResolvedSource
from .window import TimeWindow, combine_filter_parts, parse_timestamp

__all__ = ["DEFAULT_MAX_PAGES", "LATE_DATA_QUERY_SOURCE", "ChangeScan", "scan_changes"]

LATE_DATA_QUERY_SOURCE = "bt_dagster_late_data"
DEFAULT_MAX_PAGES = 5


@dataclass
class ChangeScan:
    """Rows added or changed after a cursor: ``cursor`` is the new one (highest fully processed
    ``_xact_id``), ``times`` the ``created`` of each changed row up to it, ``exhausted`` whether
    the backlog was read to the end in this scan."""

    cursor: int
    times: list[datetime] = field(default_factory=list)
    rows: int = 0
    pages: int = 0
    exhausted: bool = True
    split_transaction: bool = False


def scan_changes(
    client: BraintrustClient,
    source: ResolvedSource,
    *,
    after: int,
    since: datetime,
    max_pages: int = DEFAULT_MAX_PAGES,
    page_size: int = 1000,
) -> ChangeScan:
    """Rows with ``_xact_id > after`` and ``created >= since`` (see the module doc)."""
    parts = [
        {"btql": f"_xact_id > '{after}'"},
        TimeWindow.absolute(since, None).filter_part(),
    ]
    if source.scope == "span" and source.filter:
        parts.append({"btql": source.filter})
    query = {
        "select": [{"alias": name, "expr": ident(name)} for name in ("_xact_id", "created", "id", "root_span_id")],
        "from": project_logs_from(source.project_id),
        "filter": combine_filter_parts([p for p in parts if p]),
        "sort": [{"expr": ident("_xact_id"), "dir": "asc"}],
    }
    seen: list[tuple[int, str | None]] = []
    pages = 0
    exhausted = True
    page_iter: Iterator[list[dict[str, Any]]] = btql_pages(
        client, query, page_limit=page_size, query_source=LATE_DATA_QUERY_SOURCE
    )
    for page in page_iter:
        pages += 1
        for row in page:
            xact = parse_xact(row.get("_xact_id"))
            if xact is not None:
                seen.append((xact, row.get("created")))
        if pages >= max_pages:
            exhausted = len(page) < page_size
            break
    if hasattr(page_iter, "close"):
        page_iter.close()  # type: ignore[union-attr]
    if not seen:
        return ChangeScan(cursor=after, pages=pages)
    last = seen[-1][0]
    split = False
    if exhausted:
        cursor = max(x for x, _ in seen)
    else:
        below = [x for x, _ in seen if x < last]
        if below:
            cursor = max(below)  # the last transaction may continue on the next page
        else:
            cursor, split = last, True  # one transaction larger than a tick's budget
    times = []
    for xact, created in seen:
        if xact <= cursor and isinstance(created, str):
            try:
                times.append(parse_timestamp(created))
            except ValueError:
                continue
    return ChangeScan(
        cursor=cursor, times=times, rows=sum(1 for x, _ in seen if x <= cursor), pages=pages,
        exhausted=exhausted, split_transaction=split,
    )
