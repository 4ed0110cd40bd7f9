"""``PipelineTrace``: the braintrust SDK ``Trace`` protocol over spans we already have.

bt's runner hands transforms the SDK's ``LocalTrace``, which fetches the whole trace over BTQL
-- once per span ref for the span lookup, synchronously inside the event loop. Here a trace is
served from span dicts the pull stage already fetched (trace scope), or fetched once through an
injected ``fetch_trace(root_span_id) -> list[dict]`` (sync or async; sync ones run in a worker
thread so the loop never blocks) and cached for the trace's lifetime. Concurrent callers share one
fetch, from any thread or event loop. A failed fetch is not cached (the next call retries).

``get_spans`` returns the SDK's own ``SpanData`` objects and follows the SDK's filter semantics
(``braintrust.trace.SpanFilters``): ``span_type`` either directly or in ``filters`` (not both;
a direct empty list means no constraint, ``filters={"span_type": []}`` matches nothing),
``name``, ``has_error``, ``metadata`` (nested keys, exact JSON equality without bool/number
coercion, ``None`` matches null or missing), ``duration`` (inclusive seconds bounds on
``metrics.end - metrics.start``). Scorer spans (``span_attributes.purpose == "scorer"``) are
excluded unless ``include_scorers``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from .errors import PipelineError

try:  # the SDK's span type, so user code gets the same objects as under bt
    from braintrust.trace import SpanData
except ImportError:  # pragma: no cover - the SDK is a dependency; keep a compatible fallback

    class SpanData:  # type: ignore[no-redef]
        def __init__(self, **fields: Any) -> None:
            for name in (
                "input",
                "output",
                "metadata",
                "expected",
                "error",
                "scores",
                "metrics",
                "span_id",
                "span_parents",
                "span_attributes",
                "tags",
            ):
                setattr(self, name, None)
            for key, value in fields.items():
                setattr(self, key, value)

        @classmethod
        def from_dict(cls, data: dict[str, Any]) -> SpanData:
            return cls(**data)

        def to_dict(self) -> dict[str, Any]:
            return {k: v for k, v in self.__dict__.items() if v is not None}


__all__ = ["FetchTrace", "PipelineTrace", "TraceCache", "TraceUnavailableError"]

FetchTrace = Callable[[str], "list[dict[str, Any]] | Awaitable[list[dict[str, Any]]]"]

_FILTER_FIELDS = ("span_type", "name", "has_error", "metadata", "duration")


class TraceUnavailableError(PipelineError, RuntimeError):
    """The trace's spans were not prefetched and there is no way to fetch them."""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _leaves(metadata: Mapping[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ValueError("filters.metadata keys must be strings")
        if isinstance(value, Mapping):
            out.extend(_leaves(value, (*path, key)))
        else:
            out.append(((*path, key), value))
    return out


def normalize_span_filters(filters: Any = None, span_type: list[str] | None = None) -> dict[str, Any]:
    """Validate filters the way the SDK does and fold a direct ``span_type`` into them."""
    if filters is not None and not isinstance(filters, Mapping):
        raise ValueError("filters must be an object")
    values = dict(filters or {})
    if span_type is not None:
        if "span_type" in values:
            raise ValueError("span_type cannot be provided both directly and in filters")
        if span_type:  # a direct empty list means "no constraint" (the SDK's original API)
            values["span_type"] = span_type
    unknown = set(values) - set(_FILTER_FIELDS)
    if unknown:
        raise ValueError(
            f"Unsupported span filter fields: {', '.join(sorted(unknown))} (supported: {', '.join(_FILTER_FIELDS)})"
        )
    for field in ("span_type", "name"):
        if field in values:
            items = values[field]
            if not isinstance(items, list) or any(not isinstance(item, str) for item in items):
                raise ValueError(f"filters.{field} must be a list of strings")
    if "has_error" in values and not isinstance(values["has_error"], bool):
        raise ValueError("filters.has_error must be a boolean")
    if "metadata" in values:
        if not isinstance(values["metadata"], Mapping):
            raise ValueError("filters.metadata must be an object")
        _leaves(values["metadata"])
    if "duration" in values:
        bounds = values["duration"]
        if not isinstance(bounds, Mapping) or set(bounds) - {"min", "max"}:
            raise ValueError("filters.duration must be an object with min and/or max")
        if not all(_finite(bound) for bound in bounds.values()):
            raise ValueError("filters.duration bounds must be finite numbers")
    return values


def _json_equal(actual: Any, expected: Any) -> bool:
    """JSON equality without Python's ``True == 1`` coercion, recursively."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_json_equal(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, Mapping):
        return (
            isinstance(actual, Mapping)
            and set(actual) == set(expected)
            and all(_json_equal(actual[key], value) for key, value in expected.items())
        )
    return actual == expected


def _field(span: Any, name: str) -> Any:
    if isinstance(span, Mapping):
        return span.get(name)
    return getattr(span, name, None)


def span_matches(span: Any, filters: Mapping[str, Any]) -> bool:
    """Whether a span (dict or ``SpanData``) passes normalized ``filters``."""
    attributes = _field(span, "span_attributes") or {}
    if "span_type" in filters and attributes.get("type") not in filters["span_type"]:
        return False
    if "name" in filters and attributes.get("name") not in filters["name"]:
        return False
    if "has_error" in filters and (_field(span, "error") is not None) != filters["has_error"]:
        return False
    if "metadata" in filters:
        for path, expected in _leaves(filters["metadata"]):
            actual: Any = _field(span, "metadata")
            for key in path:
                actual = actual.get(key) if isinstance(actual, Mapping) else None
            if not _json_equal(actual, expected):
                return False
    bounds = filters.get("duration")
    if bounds:
        metrics = _field(span, "metrics") or {}
        start, end = metrics.get("start"), metrics.get("end")
        if not (_finite(start) and _finite(end)):
            return False
        elapsed = end - start
        if "min" in bounds and elapsed < bounds["min"]:
            return False
        if "max" in bounds and elapsed > bounds["max"]:
            return False
    return True


def _is_scorer(span: Mapping[str, Any]) -> bool:
    return (span.get("span_attributes") or {}).get("purpose") == "scorer"


class PipelineTrace(dict):
    """One trace of a project's logs, implementing the SDK ``Trace`` protocol.

    Like the SDK's ``LocalTrace`` it is a dict ``{"trace_ref": {object_type, object_id,
    root_span_id}}`` so it serializes sensibly if a transform passes it to ``json.dumps``.
    """

    def __init__(
        self,
        *,
        object_id: str,
        root_span_id: str,
        spans: list[dict[str, Any]] | None = None,
        fetch_trace: FetchTrace | None = None,
        object_type: str = "project_logs",
    ):
        super().__init__(
            {"trace_ref": {"object_type": object_type, "object_id": object_id, "root_span_id": root_span_id}}
        )
        self._object_type = object_type
        self._object_id = object_id
        self._root_span_id = root_span_id
        self._spans: list[dict[str, Any]] | None = [dict(span) for span in spans] if spans is not None else None
        self._fetch_trace = fetch_trace
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[list[dict[str, Any]]] | None = None

    # -- Trace protocol -------------------------------------------------------------------
    def get_configuration(self) -> dict[str, str]:
        return {
            "object_type": self._object_type,
            "object_id": self._object_id,
            "root_span_id": self._root_span_id,
        }

    async def get_spans(
        self,
        span_type: list[str] | None = None,
        *,
        filters: Any = None,
        include_scorers: bool = False,
    ) -> list[SpanData]:
        """The trace's spans as SDK ``SpanData``, filtered like the SDK (see module doc)."""
        rows = await self.span_rows(span_type, filters=filters, include_scorers=include_scorers)
        return [SpanData.from_dict(dict(span)) for span in rows]

    async def span_rows(
        self,
        span_type: list[str] | None = None,
        *,
        filters: Any = None,
        include_scorers: bool = False,
    ) -> list[dict[str, Any]]:
        """:meth:`get_spans` as plain span rows (what the Node runner hands a TS transform)."""
        normalized = normalize_span_filters(filters, span_type)
        if normalized.get("span_type") == [] or normalized.get("name") == []:
            return []
        spans = await self.span_dicts()
        return [
            span for span in spans if (include_scorers or not _is_scorer(span)) and span_matches(span, normalized)
        ]

    async def get_thread(self, options: Any = None) -> list[Any]:
        raise NotImplementedError(
            "trace.get_thread() is not supported in bt-dagster pipelines (it needs Braintrust's hosted "
            "preprocessor functions). Build the conversation from `await trace.get_spans()` instead."
        )

    # -- helpers ----------------------------------------------------------------------------
    @property
    def root_span_id(self) -> str:
        return self._root_span_id

    @property
    def spans_loaded(self) -> bool:
        return self._spans is not None

    async def span_dicts(self) -> list[dict[str, Any]]:
        """All span rows of the trace (scorers included), fetching them once if needed."""
        spans = self._spans
        if spans is not None:
            return spans
        with self._lock:
            if self._spans is not None:
                return self._spans
            pending = self._pending
            owner = pending is None
            if owner:
                pending = self._pending = concurrent.futures.Future()
        assert pending is not None
        if not owner:
            return await asyncio.wrap_future(pending)
        try:
            fetched = await self._fetch()
        except BaseException as exc:
            with self._lock:
                self._pending = None
            pending.set_exception(exc)
            raise
        with self._lock:
            self._spans = fetched
            self._pending = None
        pending.set_result(fetched)
        return fetched

    async def _fetch(self) -> list[dict[str, Any]]:
        fetch = self._fetch_trace
        if fetch is None:
            raise TraceUnavailableError(
                f"spans of trace {self._root_span_id!r} were not fetched by the pull stage and this run has "
                "no trace fetcher; run the transform with a Braintrust client (not offline) or pull with "
                "trace scope"
            )
        if inspect.iscoroutinefunction(fetch) or inspect.iscoroutinefunction(getattr(fetch, "__call__", None)):
            result: Any = await fetch(self._root_span_id)
        else:
            result = await asyncio.to_thread(fetch, self._root_span_id)
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, list) or any(not isinstance(span, Mapping) for span in result):
            raise TypeError(f"fetch_trace({self._root_span_id!r}) must return a list of span dicts")
        return [dict(span) for span in result]


class TraceCache:
    """Bounded LRU of ``PipelineTrace`` by root span id, so span refs of one trace share a fetch."""

    def __init__(self, *, fetch_trace: FetchTrace | None = None, object_id: str | None = None, size: int = 64):
        self._fetch_trace = fetch_trace
        self._object_id = object_id
        self._size = max(1, size)
        self._traces: OrderedDict[str, PipelineTrace] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, root_span_id: str, *, object_id: str | None = None, spans: list[dict[str, Any]] | None = None
    ) -> PipelineTrace:
        with self._lock:
            trace = self._traces.get(root_span_id)
            if trace is not None:
                self._traces.move_to_end(root_span_id)
                if spans is not None and not trace.spans_loaded:
                    trace._spans = [dict(span) for span in spans]  # noqa: SLF001
                return trace
            trace = PipelineTrace(
                object_id=object_id or self._object_id or "",
                root_span_id=root_span_id,
                spans=spans,
                fetch_trace=self._fetch_trace,
            )
            self._traces[root_span_id] = trace
            while len(self._traces) > self._size:
                self._traces.popitem(last=False)
            return trace
