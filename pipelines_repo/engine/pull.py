"""Pull: discover refs (and their payloads) in a source project's logs, streaming.

Public API (used by the CLI and by the Dagster assets alike)::

    resolve_source(client, source: SourceSpec) -> ResolvedSource
    pull_refs(client, source: ResolvedSource | SourceSpec, *, window=None, limit=None,
              root_span_ids=None, page_size=1000) -> PullStream
    build_discovery_query(project_id, scope, filter_, *, select_star) -> dict

``PullStream`` is a single-use iterator of :class:`engine.items.TransformItem` (a bt ref plus
its payload: ``span`` in span scope, ``spans`` = the whole trace in trace scope) with live
:class:`PullStats` in ``.stats`` (``refs``, ``pages``, ``requests``, ...). ``iter_with_created()``
yields ``(item, discovered_created)`` pairs: the ``created`` of the span that made pull find the
item (span scope: the span itself; trace scope: the trace's newest matching span), which is what
a multi-partition sweep splits on.

Semantics (docs/BT_COMPAT.md §2), and where we differ:

- Source resolution like bt: a ``project_id`` is used unverified; else the project is looked up
  by name and a missing project is an error naming it and the org (never created).
- Discovery query: bt's JSON AST (``from project_logs(<id>) spans``, filter from
  :mod:`engine.window`, ``sort _pagination_key desc``, ``limit``, ``cursor``), ``query_source
  bt_sync_discovery``. ``window`` is bt's relative seconds (``created >= NOW() - INTERVAL``), an
  absolute :class:`TimeWindow` / ``(start, end)`` pair (``[start, end)``, for partitions), or
  ``None`` (no time bound). Root span ids replace the window, as in bt.
- **Span scope** selects ``*`` in the discovery query itself, so the payload comes with the ref:
  about one request per 1000 spans (bt: one trace fetch per span). Page limit
  ``min(remaining, page_size, 1000)``; refs deduplicated on ``(root_span_id, id)`` (globally with
  a limit, over the last two pages without one, so memory stays flat on unbounded windows).
- **Trace scope** discovers roots with bt's light select (``root_span_id, id, created, _xact_id,
  is_root``; page limit ``min(page_size, 1000)``), keeps the first ``limit`` distinct roots in order
  of first appearance, and hydrates them ~100 traces per query (``root_span_id IN (...)``) as they
  are found: memory holds one batch of traces. The origin is chosen over the whole hydrated trace
  (``is_root`` wins, else earliest ``created``), so it is the root span even when the root is on a
  discovery page bt would not have read (fixes bt limitation 4, docs/BT_COMPAT.md §7).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..client import BraintrustClient, NotFoundError
from ..client.http import MAX_PAGE_SIZE
from .btql import QueryCounter, btql_pages, ident, project_logs_from
from .errors import PipelineError
from .hydrate import MAX_ROOTS_PER_QUERY, best_origin_span, fetch_traces, origin_for
from .items import TransformItem
from .readahead import read_ahead
from .seen import SpillingSet
from .spec import Scope, SourceSpec
from .window import TimeWindow, absolute_discovery_filter, discovery_filter

__all__ = [
    "PullStats",
    "PullStream",
    "ResolvedSource",
    "SourceProjectNotFoundError",
    "Window",
    "build_discovery_query",
    "pull_refs",
    "resolve_source",
]

DISCOVERY_QUERY_SOURCE = "bt_sync_discovery"
SPAN_REF_FIELDS = ("root_span_id", "id", "created", "_xact_id")
TRACE_REF_FIELDS = ("root_span_id", "id", "created", "_xact_id", "is_root")

#: ``int`` = bt's relative seconds; ``TimeWindow`` or ``(start, end)`` = absolute ``[start, end)``.
Window = int | TimeWindow | tuple[datetime | None, datetime | None] | None


class SourceProjectNotFoundError(PipelineError, LookupError):
    """The pipeline's source project does not exist (pull never creates it)."""

    def __init__(self, project_name: str, org_name: str | None):
        self.project_name = project_name
        self.org_name = org_name
        where = f" in organization {org_name!r}" if org_name else ""
        super().__init__(
            f"source project {project_name!r} not found{where}. Fix: check source.project_name in the pipeline "
            "(or pass --source-project / --source-project-id), and BRAINTRUST_ORG_NAME / --source-org."
        )


@dataclass(frozen=True)
class ResolvedSource:
    """A source whose project id is known (bt writes the resolved id, name and org back)."""

    project_id: str
    project_name: str | None = None
    org_name: str | None = None
    filter: str | None = None
    scope: Scope = "span"

    def to_bt(self) -> dict[str, Any]:
        """camelCase ``source`` object as in bt's pull spec and manifests."""
        return self.to_spec().to_bt()

    def to_spec(self) -> SourceSpec:
        return SourceSpec(
            project_id=self.project_id,
            project_name=self.project_name,
            org_name=self.org_name,
            filter=self.filter,
            scope=self.scope,
        )


def resolve_source(client: BraintrustClient, source: SourceSpec | ResolvedSource) -> ResolvedSource:
    """bt's ``resolve_pipeline_source_context``: id unverified, else name lookup (missing = error).

    The org is the source's ``org_name``, else the client's login org.
    """
    if isinstance(source, ResolvedSource):
        return source
    org = source.org_name or client.org_name
    if source.project_id:
        return ResolvedSource(
            project_id=source.project_id,
            project_name=source.project_name,
            org_name=org,
            filter=source.filter,
            scope=source.scope,
        )
    if not source.project_name:
        raise ValueError(
            "the pipeline source names no project: set source={'project_name': ...} in the pipeline "
            "(or pass --source-project / --source-project-id)"
        )
    try:
        project = client.get_project(name=source.project_name)
    except NotFoundError:
        project = None
    if project is None:
        raise SourceProjectNotFoundError(source.project_name, org)
    return ResolvedSource(
        project_id=project["id"],
        project_name=project.get("name") or source.project_name,
        org_name=org,
        filter=source.filter,
        scope=source.scope,
    )


def window_filter(
    window: Window, source_filter: str | None, root_span_ids: Sequence[str] | None
) -> dict[str, Any] | None:
    """bt's discovery filter for any kind of window (see module doc)."""
    if isinstance(window, bool):
        raise TypeError("window must be seconds, a TimeWindow, a (start, end) pair or None")
    if window is None or isinstance(window, int):
        return discovery_filter(window, source_filter, root_span_ids)
    if isinstance(window, tuple):
        window = TimeWindow.absolute(*window)
    if not isinstance(window, TimeWindow):
        raise TypeError(f"window must be seconds, a TimeWindow, a (start, end) pair or None (got {window!r})")
    return absolute_discovery_filter(window, source_filter, root_span_ids)


def build_discovery_query(
    project_id: str, scope: Scope, filter_: dict[str, Any] | None, *, select_star: bool | None = None
) -> dict[str, Any]:
    """bt's ``build_project_log_ref_query`` (limit and cursor are set per page).

    ``select_star`` (default: span scope) selects the whole span instead of bt's ref fields.
    """
    if select_star is None:
        select_star = scope == "span"
    if select_star:
        select: list[dict[str, Any]] = [{"op": "star"}]
    else:
        fields = TRACE_REF_FIELDS if scope == "trace" else SPAN_REF_FIELDS
        select = [{"alias": name, "expr": ident(name)} for name in fields]
    query: dict[str, Any] = {
        "select": select,
        "from": project_logs_from(project_id, "spans"),
        "sort": [{"expr": ident("_pagination_key"), "dir": "desc"}],
    }
    if filter_ is not None:
        query["filter"] = filter_
    return query


@dataclass
class PullStats:
    """What one pull did. ``pages``: discovery pages read (bt's ``pages``); ``requests``: every
    ``/btql`` call of this pull (discovery + trace hydration; client retries are counted in
    ``client.stats``); ``spans``: span payloads received; ``hydrate_requests``: the trace-scope
    hydration share of ``requests``."""

    scope: Scope = "span"
    refs: int = 0
    pages: int = 0
    requests: int = 0
    spans: int = 0
    hydrate_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _span_ref(row: dict[str, Any], project_id: str) -> dict[str, Any]:
    return {"id": row["id"], "origin": origin_for(row, project_id), "root_span_id": row["root_span_id"]}


class PullStream(Iterator[TransformItem]):
    """Single-use iterator over pulled items with live :attr:`stats` (see module doc)."""

    def __init__(
        self,
        client: BraintrustClient,
        source: ResolvedSource,
        *,
        window: Window,
        limit: int | None,
        root_span_ids: Sequence[str] | None,
        page_size: int,
    ):
        if limit is not None and limit < 1:
            raise ValueError("limit must be > 0 (or None for no limit)")
        if page_size < 1:
            raise ValueError("page_size must be > 0")
        self.client = client
        self.source = source
        self.limit = limit
        self.root_span_ids = list(root_span_ids or [])
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.filter = window_filter(window, source.filter, self.root_span_ids)
        self.stats = PullStats(scope=source.scope)
        self._discovery = QueryCounter()
        self._hydration = QueryCounter()
        self._pairs: Iterator[tuple[TransformItem, str | None]] | None = None

    # -- iteration ------------------------------------------------------------------------
    def iter_with_created(self) -> Iterator[tuple[TransformItem, str | None]]:
        """``(item, discovered_created)`` pairs; use instead of iterating the stream itself."""
        if self._pairs is not None:
            raise RuntimeError("a PullStream can be iterated only once")
        self._pairs = self._trace_pairs() if self.source.scope == "trace" else self._span_pairs()
        return self._pairs

    def __iter__(self) -> PullStream:
        return self

    def __next__(self) -> TransformItem:
        if self._pairs is None:
            self.iter_with_created()
        assert self._pairs is not None
        return next(self._pairs)[0]

    def close(self) -> None:
        if self._pairs is not None and hasattr(self._pairs, "close"):
            self._pairs.close()  # type: ignore[union-attr]

    def _sync_stats(self) -> None:
        self.stats.pages = self._discovery.pages
        self.stats.hydrate_requests = self._hydration.requests
        self.stats.requests = self._discovery.requests + self._hydration.requests

    def _discovery_pages(self, page_limit: Any) -> Iterator[list[dict[str, Any]]]:
        query = build_discovery_query(self.source.project_id, self.source.scope, self.filter)
        pages = btql_pages(
            self.client, query, page_limit=page_limit, counter=self._discovery, query_source=DISCOVERY_QUERY_SOURCE
        )
        if self.limit is None:
            # Unbounded sweeps (partitions, --no-limit) fetch the next page while this one is
            # transformed and pushed. With --limit the page size depends on what is consumed.
            pages = read_ahead(pages)
        for page in pages:
            self._sync_stats()
            yield page
        self._sync_stats()

    # -- span scope -----------------------------------------------------------------------
    def _span_pairs(self) -> Iterator[tuple[TransformItem, str | None]]:
        limit = self.limit
        project_id = self.source.project_id
        stats = self.stats

        def page_limit() -> int:
            remaining = limit - stats.refs if limit is not None else MAX_PAGE_SIZE
            return min(max(remaining, 1), self.page_size)

        seen: set[tuple[str, str]] = set()
        previous_page: set[tuple[str, str]] = set()
        for page in self._discovery_pages(page_limit):
            current: set[tuple[str, str]] = set()
            for row in page:
                root, row_id = row.get("root_span_id"), row.get("id")
                if not isinstance(root, str) or not isinstance(row_id, str) or not root or not row_id:
                    continue
                key = (root, row_id)
                if limit is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                else:  # unbounded: dedupe against this and the previous page only (flat memory)
                    if key in current or key in previous_page:
                        continue
                    current.add(key)
                stats.refs += 1
                stats.spans += 1
                yield TransformItem(ref=_span_ref(row, project_id), span=row), row.get("created")
                if limit is not None and stats.refs >= limit:
                    return
            previous_page = current

    # -- trace scope ----------------------------------------------------------------------
    def _trace_pairs(self) -> Iterator[tuple[TransformItem, str | None]]:
        # Discovery and hydration run one batch of traces ahead in a worker thread, so the next
        # batch is fetched while this one is transformed and pushed.
        for batch in read_ahead(self._hydrated_batches()):
            for item, created in batch:
                self.stats.refs += 1
                self.stats.spans += len(item.spans or ())
                yield item, created

    def _hydrated_batches(self) -> Iterator[list[tuple[TransformItem, str | None]]]:
        """Discovered roots, hydrated ``MAX_ROOTS_PER_QUERY`` traces a query, a batch at a time."""
        limit = self.limit
        project_id = self.source.project_id
        # Roots found but not yet hydrated, in order: root -> (best discovered row, its created).
        pending: dict[str, list[Any]] = {}
        done = SpillingSet()  # every hydrated root; bounded memory however wide the window

        def flush() -> list[tuple[TransformItem, str | None]]:
            traces = fetch_traces(self.client, project_id, list(pending), counter=self._hydration)
            self._sync_stats()
            batch = []
            for root, (discovered, created) in pending.items():
                spans = traces.get(root) or []
                chosen = best_origin_span(spans) or discovered
                ref = {"origin": origin_for(chosen, project_id), "root_span_id": root}
                batch.append((TransformItem(ref=ref, spans=spans), created))
            done.update(pending)
            pending.clear()
            return batch

        found = 0
        for page in self._discovery_pages(self.page_size):
            for row in page:
                root = row.get("root_span_id")
                if not isinstance(root, str) or not root or not isinstance(row.get("id"), str):
                    continue
                if root in done:
                    continue
                entry = pending.get(root)
                if entry is not None:
                    if best_origin_span([entry[0], row]) is row:
                        entry[0] = row
                    continue
                if limit is not None and found >= limit:
                    continue  # bt ignores rows of further new roots
                found += 1
                pending[root] = [row, row.get("created")]
                if len(pending) >= MAX_ROOTS_PER_QUERY:
                    yield flush()
            if limit is not None and found >= limit:
                break
        if pending:
            yield flush()


def pull_refs(
    client: BraintrustClient,
    source: ResolvedSource | SourceSpec,
    *,
    window: Window = None,
    limit: int | None = None,
    root_span_ids: Sequence[str] | None = None,
    page_size: int = MAX_PAGE_SIZE,
) -> PullStream:
    """Stream the refs (with payloads) of ``source`` in ``window``; see the module doc.

    ``source`` may be a :class:`SourceSpec` (resolved here, one project lookup) or an already
    :class:`ResolvedSource`. ``limit=None`` means no limit (partitions); bt's default is 100.
    """
    resolved = resolve_source(client, source)
    return PullStream(
        client, resolved, window=window, limit=limit, root_span_ids=root_span_ids, page_size=page_size
    )
