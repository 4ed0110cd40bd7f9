"""Fetch span payloads and whole traces from a project's logs in bulk (``POST /btql``).

Used by the pull stage (trace scope: many whole traces per query), by a staged ``transform``
whose ``pulled.jsonl`` has no payload sidecar (the user edited it, or it came from bt), and as
the on-demand trace fetcher behind ``trace.get_spans()`` in span scope.

Request budget (why this module exists; bt re-fetches a whole trace once per span ref):

- :func:`fetch_spans_by_id`: ``id IN (...)`` with up to 1000 ids per query -> about one request
  per 1000 span refs;
- :func:`fetch_traces`: ``root_span_id IN (...)`` with up to 100 roots per query, paged on the
  cursor (1000 spans per page) -> about one request per 100 traces (more for very large traces);
- :func:`make_trace_fetcher`: one trace per call (what ``PipelineTrace`` uses lazily).

Every query is bt's JSON AST (``select *`` from ``project_logs(<id>)`` with ``shape: "spans"``),
sorted on ``_pagination_key`` ascending so spans of a trace come back in write order, built and
counted with :mod:`engine.btql`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..client import BraintrustClient
from ..client.http import MAX_PAGE_SIZE
from .btql import QueryCounter, btql_pages, ident, in_filter, project_logs_from
from .items import TransformItem

__all__ = [
    "MAX_ROOTS_PER_QUERY",
    "best_origin_span",
    "fetch_spans_by_id",
    "fetch_traces",
    "hydrate_items",
    "make_trace_fetcher",
    "origin_for",
]

HYDRATE_QUERY_SOURCE = "bt_dagster_hydrate"
MAX_IDS_PER_QUERY = 1000
MAX_ROOTS_PER_QUERY = 100


# -- query helpers ----------------------------------------------------------------------------


def _star_query(project_id: str, filter_: dict[str, Any] | None, direction: str = "asc") -> dict[str, Any]:
    query: dict[str, Any] = {
        "select": [{"op": "star"}],
        "from": project_logs_from(project_id),
        "sort": [{"expr": ident("_pagination_key"), "dir": direction}],
    }
    if filter_ is not None:
        query["filter"] = filter_
    return query


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- fetches ----------------------------------------------------------------------------------


def fetch_traces(
    client: BraintrustClient,
    project_id: str,
    root_span_ids: Sequence[str],
    *,
    counter: QueryCounter | None = None,
    roots_per_query: int = MAX_ROOTS_PER_QUERY,
) -> dict[str, list[dict[str, Any]]]:
    """Every span of the given traces: ``{root_span_id: [span rows in _pagination_key order]}``.

    Roots with no visible span map to ``[]``. ``roots_per_query`` roots go in one
    ``root_span_id IN (...)`` query, paged 1000 spans at a time.
    """
    found: dict[str, list[dict[str, Any]]] = {root: [] for root in root_span_ids}
    for chunk in _chunks(dict.fromkeys(root_span_ids), max(1, roots_per_query)):
        query = _star_query(project_id, in_filter("root_span_id", chunk))
        for page in btql_pages(client, query, counter=counter, query_source=HYDRATE_QUERY_SOURCE):
            for span in page:
                bucket = found.get(span.get("root_span_id"))
                if bucket is not None:
                    bucket.append(span)
    return found


def fetch_spans_by_id(
    client: BraintrustClient,
    project_id: str,
    ids: Sequence[str],
    *,
    counter: QueryCounter | None = None,
    ids_per_query: int = MAX_IDS_PER_QUERY,
) -> dict[str, dict[str, Any]]:
    """Span rows by row id (``id IN (...)``, up to 1000 ids per query); missing ids are absent."""
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(dict.fromkeys(ids), max(1, min(ids_per_query, MAX_PAGE_SIZE))):
        query = _star_query(project_id, in_filter("id", chunk))
        for page in btql_pages(client, query, counter=counter, query_source=HYDRATE_QUERY_SOURCE):
            for span in page:
                row_id = span.get("id")
                if isinstance(row_id, str):
                    found[row_id] = span
    return found


def make_trace_fetcher(
    client: BraintrustClient, project_id: str, *, counter: QueryCounter | None = None
) -> Callable[[str], list[dict[str, Any]]]:
    """``fetch_trace(root_span_id) -> spans`` for :func:`engine.transform.make_trace_factory`."""

    def fetch_trace(root_span_id: str) -> list[dict[str, Any]]:
        return fetch_traces(client, project_id, [root_span_id], counter=counter)[root_span_id]

    return fetch_trace


# -- origins ----------------------------------------------------------------------------------


def _origin_rank(span: Mapping[str, Any]) -> tuple[int, int, str]:
    """Sort key: is_root first, then a ``created`` string before none, then earliest created."""
    created = span.get("created")
    has_created = isinstance(created, str)
    return (0 if span.get("is_root") is True else 1, 0 if has_created else 1, created if has_created else "")


def best_origin_span(spans: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """bt's origin choice: ``is_root=true`` wins, else the earliest ``created`` (a value beats none).

    Ties keep the first span seen (bt replaces only on a strictly better candidate).
    """
    best: Mapping[str, Any] | None = None
    for span in spans:
        if not isinstance(span.get("id"), str):
            continue
        if best is None or _origin_rank(span) < _origin_rank(best):
            best = span
    return best


def origin_for(span: Mapping[str, Any], project_id: str) -> dict[str, Any]:
    """bt's ``origin`` object for a project-log row; ``created``/``_xact_id`` only when strings."""
    origin: dict[str, Any] = {"id": span["id"], "object_id": project_id, "object_type": "project_logs"}
    for key in ("_xact_id", "created"):
        value = span.get(key)
        if isinstance(value, str):
            origin[key] = value
    return dict(sorted(origin.items()))


# -- hydration of payload-less refs -------------------------------------------------------------


def hydrate_items(
    client: BraintrustClient,
    refs: Iterable[Mapping[str, Any]],
    *,
    project_id: str | None = None,
    counter: QueryCounter | None = None,
) -> Iterator[TransformItem]:
    """Turn bare ``pulled.jsonl`` refs into :class:`TransformItem` with payloads, in order.

    A ref with a string ``id`` (span scope) gets its span (``id IN (...)``, 1000 refs per query);
    a ref without (trace scope) gets its whole trace (100 roots per query). The project is the
    ref's ``origin.object_id`` unless ``project_id`` is given. A span that no longer exists is
    left out (``span=None``): the transform then looks it up in the trace and reports bt's
    ``Source span row ... was not found`` under the error policy. Memory: one batch of refs.
    """

    def project_of(ref: Mapping[str, Any]) -> str:
        if project_id:
            return project_id
        origin = ref.get("origin")
        object_id = origin.get("object_id") if isinstance(origin, Mapping) else None
        if not isinstance(object_id, str) or not object_id:
            raise ValueError(
                f"pulled ref {dict(ref)!r} has no origin.object_id; re-run `pull` to rebuild pulled.jsonl"
            )
        return object_id

    batch: list[Mapping[str, Any]] = []

    def flush() -> Iterator[TransformItem]:
        spans_by_project: dict[str, list[str]] = {}
        roots_by_project: dict[str, list[str]] = {}
        for ref in batch:
            row_id = ref.get("id")
            if isinstance(row_id, str) and row_id:
                spans_by_project.setdefault(project_of(ref), []).append(row_id)
            elif isinstance(ref.get("root_span_id"), str):
                roots_by_project.setdefault(project_of(ref), []).append(ref["root_span_id"])
        spans: dict[tuple[str, str], dict[str, Any]] = {}
        for pid, ids in spans_by_project.items():
            for row_id, span in fetch_spans_by_id(client, pid, ids, counter=counter).items():
                spans[(pid, row_id)] = span
        traces: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for pid, roots in roots_by_project.items():
            for root, trace_spans in fetch_traces(client, pid, roots, counter=counter).items():
                traces[(pid, root)] = trace_spans
        for ref in batch:
            row_id = ref.get("id")
            if isinstance(row_id, str) and row_id:
                span = spans.get((project_of(ref), row_id))
                if span is not None and span.get("root_span_id") not in (None, ref.get("root_span_id")):
                    span = None  # same id under another root: not the ref's span
                yield TransformItem(ref=dict(ref), span=span)
            elif isinstance(ref.get("root_span_id"), str):
                yield TransformItem(ref=dict(ref), spans=traces.get((project_of(ref), ref["root_span_id"]), []))
            else:
                yield TransformItem(ref=dict(ref))  # the transform reports the missing root_span_id
        batch.clear()

    size = 0
    for ref in refs:
        batch.append(ref)
        # Span refs are cheap (1000 per query); traces are heavy (100 per query).
        size += 1 if isinstance(ref.get("id"), str) else 10
        if size >= MAX_IDS_PER_QUERY:
            yield from flush()
            size = 0
    if batch:
        yield from flush()
