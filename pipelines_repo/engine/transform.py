"""Run the user's transform over pulled items, streaming, with bt's argument semantics.

Items are :class:`engine.items.TransformItem` (a bt ref plus the span's payload or the trace's
spans, as the pull stage embedded them), or ``pulled.jsonl`` dicts.

:func:`transform_items` streams: at most ``2 * max_concurrency`` items are in flight, at most
``max_concurrency`` transform calls run at once, and rows come out in input order. Async
transforms are awaited on one private event loop (running in its own thread, so callers may
be sync or async); sync transforms run in a thread pool of ``max_concurrency`` workers -- or,
once they are measured to be fast (CPU-bound, well under a millisecond a call), inline in the
consuming thread: under the GIL threads cannot speed such calls up, and handing each one to a
pool costs more than the call itself. A transform that turns slow goes back to the pool. The
measured speed outlives the stream (per transform, in this process), so the next partition's
stream starts inline, and the pool and the event loop thread start only when first needed.

Arguments are bt's (docs/BT_COMPAT.md §3), passed by keyword and filtered like the SDK's
``call_user_fn``: a ref with a string ``id`` (span scope) gives ``input, output, expected,
metadata`` of that span, ``trace`` and ``id``; a ref without (trace scope) gives
``input=output=expected=metadata=None`` and ``trace``. Parameters match by name, missing ones
keep their defaults, a required parameter with an unknown name takes the next unused argument,
and ``**kwargs`` receives the rest.

Results go through :func:`rows.normalize_result` (fallback ids, origin) and, unless
``validate=False``, :func:`rows.validate_row` -- so a bad row is an item error under the error
policy instead of failing the push later. Error policy: ``fail`` raises :class:`TransformError`
naming the ref, with the original traceback text (after every earlier item's rows were
yielded); ``skip`` appends ``{"ref", "error", "traceback"}`` to ``errors.jsonl`` and continues.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import json
import os
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from .errors import FatalTransformError, PipelineError
from .items import TransformItem
from .jsonl import canonical_json
from .rows import EncodedRow, RowValidationError, check_row, normalize_result, ref_fallback_id
from .run_output import attach_run_output, choose_span
from .spec import PipelineSpec
from .trace import FetchTrace, PipelineTrace, TraceCache

__all__ = [
    "SourceSpanNotFoundError",
    "TraceFactory",
    "TransformError",
    "TransformStats",
    "TransformStream",
    "call_args",
    "make_trace_factory",
    "transform_items",
]

# Frames trimmed from a failing transform's traceback: this module's own (by file, so the check
# follows the code wherever it moves) and the event loop / thread pool machinery around the call.
_OWN_FILES = frozenset({os.path.abspath(__file__)})
_STDLIB_DIRS = tuple(
    os.path.dirname(os.path.abspath(module.__file__)) + os.sep for module in (asyncio, concurrent.futures)
)


# What a transform is offered (bt's runner): span scope, and trace scope (no span of its own).
_SPAN_KEYS = ("input", "output", "expected", "metadata", "trace", "id")
_TRACE_KEYS = ("input", "output", "expected", "metadata", "trace")


class TransformError(PipelineError, RuntimeError):
    """The transform failed on one ref (``fail`` policy: ``pipeline``, ``ref``, ``error`` and the
    user's ``traceback_text`` are set), or the error rate was exceeded (only the message)."""

    def __init__(
        self,
        message: str,
        *,
        pipeline: str | None = None,
        ref: Mapping[str, Any] | None = None,
        error: str | None = None,
        traceback_text: str | None = None,
    ):
        super().__init__(message)
        self.pipeline = pipeline
        self.ref = dict(ref) if ref is not None else None
        self.error = error
        self.traceback_text = traceback_text

    def describe(self) -> str:
        """One line: the pipeline, the ref and the error, without the traceback (``-v`` shows it)."""
        if self.error is None:
            return str(self).splitlines()[0]
        ref = self.ref or {}
        where = " ".join(f"{k}={ref[k]!r}" for k in ("root_span_id", "id") if k in ref)
        return (
            f"the transform of pipeline {self.pipeline!r} failed for ref {where}: {self.error}. Fix: fix the "
            "transform (rerun with -v for the traceback), or pass --on-error skip to record failing refs "
            "in errors.jsonl and continue."
        )


class SourceSpanNotFoundError(PipelineError, LookupError):
    """bt: ``Source span row '<id>' was not found in hydrated trace.``"""


@dataclass
class TransformStats:
    """Counters, updated as rows are yielded. ``candidates`` counts finished items (incl. skipped)."""

    candidates: int = 0
    rows: int = 0
    skipped: int = 0
    errors_path: Path | None = None

    @property
    def error_rate(self) -> float:
        return self.skipped / self.candidates if self.candidates else 0.0

    def check_error_rate(self, max_error_rate: float) -> None:
        """Raise :class:`TransformError` when skipped/candidates exceeds ``max_error_rate``."""
        if self.candidates and self.error_rate > max_error_rate:
            where = f" (see {self.errors_path})" if self.errors_path else ""
            raise TransformError(
                f"{self.skipped} of {self.candidates} candidates failed the transform "
                f"({self.error_rate:.1%} > max_error_rate {max_error_rate:.1%}){where}. "
                "Fix the transform, or raise max_error_rate in the pipeline options."
            )


TraceFactory = Callable[[TransformItem], Any]


def make_trace_factory(
    fetch_trace: FetchTrace | None = None, *, object_id: str | None = None, cache_size: int = 64
) -> TraceFactory:
    """A factory giving each item a :class:`PipelineTrace`.

    An item's embedded ``spans`` (trace scope) make a pre-loaded trace of its own (not cached:
    each root appears once in trace scope). Otherwise items of one root span share one trace
    object from a bounded LRU of ``cache_size`` traces, so ``fetch_trace(root_span_id)`` runs at
    most once while that root's refs are near each other. ``object_id`` defaults to the ref's
    ``origin.object_id``.
    """
    cache = TraceCache(fetch_trace=fetch_trace, object_id=object_id, size=cache_size)

    def factory(item: TransformItem) -> PipelineTrace:
        root = item.root_span_id
        if root is None:
            raise ValueError("Discovery ref is missing root_span_id.")
        if item.spans is not None:
            return PipelineTrace(
                object_id=object_id or item.object_id or "",
                root_span_id=root,
                spans=item.spans,  # the trace copies each span itself
                fetch_trace=fetch_trace,
            )
        return cache.get(root, object_id=object_id or item.object_id)

    return factory


@dataclass(frozen=True)
class CallPlan:
    """How one transform takes arguments offered under ``keys``: worked out once per transform
    and key set (:func:`plan_call`), applied to each item's values (:meth:`args`)."""

    positional: tuple[tuple[str | None, Any], ...]  # (offered key, or None and the default to pass)
    keyword: tuple[tuple[str, str], ...]  # (parameter name, offered key)
    rest: bool  # ``**kwargs`` (or an uninspectable callable) takes every key not used by name
    used: frozenset[str]

    def takes(self, key: str) -> bool:
        """Whether the offered ``key`` reaches the transform (so it must be computed)."""
        return self.rest or key in self.used

    def args(self, kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        positional = [kwargs[key] if key is not None else default for key, default in self.positional]
        keyword = {name: kwargs[key] for name, key in self.keyword}
        if self.rest:
            keyword.update((key, value) for key, value in kwargs.items() if key not in self.used)
        return positional, keyword


def plan_call(fn: Callable[..., Any], keys: tuple[str, ...]) -> CallPlan:
    """bt's argument matching (see module doc) for arguments offered under ``keys``, in order."""
    parameters = _parameters(fn)
    if parameters is None:
        return CallPlan((), (), True, frozenset())
    remaining = list(keys)
    positional: list[tuple[str | None, Any]] = []
    keyword: list[tuple[str, str]] = []
    accepts_kwargs = False
    for name, param in parameters:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_kwargs = True
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if name in remaining:
            key = name
        elif param.default is not inspect.Parameter.empty:
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                positional.append((None, param.default))
            continue
        elif remaining:
            key = remaining[0]  # legacy positional fallback: the next unused argument
        else:
            continue
        remaining.remove(key)
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append((key, None))
        else:
            keyword.append((name, key))
    used = frozenset(key for key, _ in positional if key is not None) | frozenset(key for _, key in keyword)
    return CallPlan(tuple(positional), tuple(keyword), accepts_kwargs, used)


def call_args(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Filter ``kwargs`` for ``fn`` like the SDK's ``call_user_fn`` (see module doc).

    Returns ``(positional, keyword)``; positional-only parameters are passed positionally.
    """
    return plan_call(fn, tuple(kwargs)).args(kwargs)


@functools.lru_cache(maxsize=256)
def _cached_parameters(fn: Callable[..., Any]) -> tuple[tuple[str, inspect.Parameter], ...] | None:
    try:
        return tuple(inspect.signature(fn).parameters.items())
    except (TypeError, ValueError):
        return None


def _parameters(fn: Callable[..., Any]) -> tuple[tuple[str, inspect.Parameter], ...] | None:
    """The transform's parameters, read once per transform (``inspect.signature`` costs more than
    a cheap transform's whole call)."""
    try:
        return _cached_parameters(fn)
    except TypeError:  # an unhashable callable object
        return _cached_parameters.__wrapped__(fn)


def _is_async_callable(fn: Any) -> bool:
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def _format_traceback(exc: BaseException) -> str:
    """The exception's traceback without this engine's and asyncio's frames."""
    te = traceback.TracebackException.from_exception(exc)
    frames = [
        frame
        for frame in te.stack
        if os.path.abspath(frame.filename) not in _OWN_FILES
        and not os.path.abspath(frame.filename).startswith(_STDLIB_DIRS)
    ]
    te.stack = traceback.StackSummary.from_list(frames)
    return "".join(te.format())


@dataclass
class _Outcome:
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None


class TransformStream(Iterator[dict[str, Any]]):
    """Iterator of transformed rows (input order) with live :attr:`stats`. Close it when done
    early (or use it as a context manager); exhausting it closes it."""

    def __init__(
        self,
        spec: PipelineSpec,
        items: Iterable[TransformItem],
        *,
        trace_factory: TraceFactory,
        max_concurrency: int,
        on_error: Literal["fail", "skip"],
        errors_path: Path | None,
        validate: bool,
        on_progress: Callable[[TransformStats], None] | None,
        stats: TransformStats,
    ):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip' (got {on_error!r})")
        if on_error == "skip" and errors_path is None:
            raise ValueError("on_error='skip' needs errors_path (errors.jsonl) so skipped items are recorded")
        self.spec = spec
        self.stats = stats
        self.stats.errors_path = errors_path
        self._items = iter(items)
        self._trace_factory = trace_factory
        self._max_concurrency = max_concurrency
        self._window = 2 * max_concurrency
        self._on_error = on_error
        self._errors_path = errors_path
        self._validate = validate
        self._on_progress = on_progress
        self._transform = spec.transform
        self._run_output = spec.options.run_output
        self._is_async = _is_async_callable(spec.transform)
        self._pending: deque[tuple[TransformItem, Future[_Outcome] | _Outcome]] = deque()
        self._buffer: deque[dict[str, Any]] = deque()
        self._started = False
        self._closed = False
        self._items_done = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._errors_file: IO[str] | None = None
        self._inline = False
        self._plans: dict[tuple[str, ...], CallPlan] = {}
        self._loop_lock = threading.Lock()
        self._timing_lock = threading.Lock()
        # A transform measured by an earlier stream in this process (the previous partition)
        # starts where that one left off instead of timing itself on the pool again.
        self._timed_calls, self._mean_call_seconds = _known_timing(spec.transform)

    # -- lifecycle ------------------------------------------------------------------------
    def _start(self) -> None:
        self._started = True
        if self._errors_path is not None:
            self._errors_path.parent.mkdir(parents=True, exist_ok=True)
            self._errors_file = open(self._errors_path, "w", encoding="utf-8")  # noqa: SIM115

    # The event loop thread and the thread pool start when first needed: a fast sync transform
    # of a small partition (a backfill runs hundreds) needs neither once its speed is known.
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is not None:
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name=f"bt-transform-loop[{self.spec.name}]", daemon=True)
            self._thread.start()
            ready.wait()

            async def make_semaphore() -> asyncio.Semaphore:
                return asyncio.Semaphore(self._max_concurrency)

            self._semaphore = asyncio.run_coroutine_threadsafe(make_semaphore(), loop).result()
            self._loop = loop
            return loop

    def _ensure_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._max_concurrency, thread_name_prefix="bt-transform")
        return self._pool

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is not None and self._thread is not None:
            for _, pending in self._pending:
                if isinstance(pending, Future):
                    pending.cancel()

            async def drain() -> None:
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(drain(), loop).result(timeout=30)
            except Exception:  # noqa: BLE001 - best effort on shutdown
                pass
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=30)
            if not self._thread.is_alive():
                loop.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pending.clear()
        self._buffer.clear()
        if self._errors_file is not None:
            self._errors_file.close()
            self._errors_file = None

    def __enter__(self) -> TransformStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - safety net for abandoned streams
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # -- iteration ------------------------------------------------------------------------
    def __iter__(self) -> TransformStream:
        return self

    def __next__(self) -> dict[str, Any]:
        while not self._buffer:
            if self._closed:
                raise StopIteration
            if not self._started:
                self._start()
            try:
                self._advance()
            except BaseException:
                self.close()
                raise
        return self._buffer.popleft()

    def _fill(self) -> None:
        while not self._items_done and len(self._pending) < self._window:
            try:
                item = next(self._items)
            except StopIteration:
                self._items_done = True
                break
            if not isinstance(item, TransformItem):
                item = TransformItem.from_json(item)
            if self._is_async:
                future: Future[_Outcome] = asyncio.run_coroutine_threadsafe(self._run_one(item), self._ensure_loop())
            elif self._use_inline():
                self._pending.append((item, self._run_sync(item)))  # done already: no future
                continue
            else:
                future = self._ensure_pool().submit(self._run_sync, item)
            self._pending.append((item, future))

    def _advance(self) -> None:
        self._fill()
        if not self._pending:
            self.close()
            return
        item, pending = self._pending.popleft()
        outcome = pending if isinstance(pending, _Outcome) else pending.result()
        self.stats.candidates += 1
        if outcome.error is None:
            self.stats.rows += len(outcome.rows)
            self._buffer.extend(outcome.rows)
        else:
            self._record_error(item, outcome)
            if self._on_error == "fail":
                raise TransformError(
                    f"Transform of pipeline {self.spec.name!r} failed for ref {item.describe()}: {outcome.error}\n"
                    f"Original traceback:\n{outcome.traceback}"
                    "Fix the transform, or set on_error='skip' to record failing refs in errors.jsonl and continue.",
                    pipeline=self.spec.name,
                    ref=item.ref,
                    error=outcome.error,
                    traceback_text=outcome.traceback,
                )
            self.stats.skipped += 1
        if self._on_progress is not None:
            self._on_progress(self.stats)

    def _record_error(self, item: TransformItem, outcome: _Outcome) -> None:
        if self._errors_file is None:
            return
        line = {"ref": dict(item.ref), "error": outcome.error, "traceback": outcome.traceback}
        self._errors_file.write(json.dumps(line, sort_keys=True, ensure_ascii=False, default=repr) + "\n")
        self._errors_file.flush()

    # -- one item ---------------------------------------------------------------------------
    def _plan(self, item: TransformItem) -> CallPlan:
        """The transform's call plan for this kind of item (worked out once per kind)."""
        keys = _SPAN_KEYS if item.id is not None else _TRACE_KEYS
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = plan_call(self._transform, keys)
        return plan

    def _trace(self, item: TransformItem, plan: CallPlan) -> Any:
        """The item's trace, or None when nothing needs one: the transform does not take it, the
        span came with the ref and run_output has the spans it chooses from. A ref without a
        root span id fails (raised inside the caller's try, so the error policy records or
        raises it like a transform error)."""
        if item.root_span_id is None:
            raise ValueError("Discovery ref is missing root_span_id.")
        if item.id is not None:
            needed = plan.takes("trace") or item.span is None
        else:
            needed = plan.takes("trace") or (bool(self._run_output) and not item.spans)
        return self._trace_factory(item) if needed else None

    @staticmethod
    def _kwargs(item: TransformItem, trace: Any, span: Any) -> dict[str, Any]:
        if item.id is None:
            return {"input": None, "output": None, "expected": None, "metadata": None, "trace": trace}
        return {
            "input": _get(span, "input"),
            "output": _get(span, "output"),
            "expected": _get(span, "expected"),
            "metadata": _get(span, "metadata"),
            "trace": trace,
            "id": item.id,
        }

    def _finish(self, item: TransformItem, result: Any, run_span: Any = None) -> list[dict[str, Any]]:
        rows = normalize_result(result, fallback_id=ref_fallback_id(item.ref), origin=item.origin)
        attach_run_output(rows, run_span)
        checked = []
        for index, row in enumerate(rows):
            if self._validate:
                problems, text = check_row(row)
                if problems:
                    raise RowValidationError(index, row.get("id"), problems)
                checked.append(EncodedRow(row, text))  # the push sends this text, not a second encode
            else:
                canonical_json(row)  # rows must at least be writable as JSON
                checked.append(row)
        return checked

    @staticmethod
    def _failure(exc: Exception) -> _Outcome:
        return _Outcome(error=f"{type(exc).__name__}: {exc}", traceback=_format_traceback(exc))

    # async transforms: on the private loop, at most max_concurrency at once
    async def _run_one(self, item: TransformItem) -> _Outcome:
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                plan = self._plan(item)
                trace = self._trace(item, plan)
                span = item.span
                if item.id is not None and span is None:
                    span = await _find_source_span(trace, item.id)
                positional, keyword = plan.args(self._kwargs(item, trace, span))
                result = self._transform(*positional, **keyword)
                if inspect.isawaitable(result):
                    result = await result
                run_span = None
                if self._run_output:
                    spans = None if item.id is not None else (item.spans or await _trace_spans(trace))
                    run_span = choose_span(self._run_output, source=span, spans=spans)
                return _Outcome(rows=self._finish(item, result, run_span))
            except FatalTransformError:
                raise  # the runner itself failed: no item's fault, so no policy applies
            except Exception as exc:  # noqa: BLE001 - every user error goes through the policy
                return self._failure(exc)

    # sync transforms: in a pool thread, or inline once measured fast
    def _run_sync(self, item: TransformItem) -> _Outcome:
        try:
            plan = self._plan(item)
            trace = self._trace(item, plan)
            span = item.span
            if item.id is not None and span is None:
                span = self._on_loop(_find_source_span(trace, item.id))
            positional, keyword = plan.args(self._kwargs(item, trace, span))
            started = time.perf_counter()
            result = self._transform(*positional, **keyword)
            if inspect.isawaitable(result):
                result = self._on_loop(result)
            self._record_call(time.perf_counter() - started)
            run_span = None
            if self._run_output:
                spans = None if item.id is not None else (item.spans or self._on_loop(_trace_spans(trace)))
                run_span = choose_span(self._run_output, source=span, spans=spans)
            return _Outcome(rows=self._finish(item, result, run_span))
        except FatalTransformError:
            raise
        except Exception as exc:  # noqa: BLE001 - every user error goes through the policy
            return self._failure(exc)

    def _on_loop(self, awaitable: Any) -> Any:
        async def wait() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), self._ensure_loop()).result()

    _INLINE_AFTER_CALLS = 32
    _INLINE_BELOW_SECONDS = 0.0005
    _POOL_ABOVE_SECONDS = 0.005

    def _record_call(self, seconds: float) -> None:
        with self._timing_lock:
            self._timed_calls += 1
            # an exponential moving mean reacts to a transform that turns slow (e.g. starts calling an LLM)
            weight = 1.0 / min(self._timed_calls, self._INLINE_AFTER_CALLS)
            self._mean_call_seconds += weight * (seconds - self._mean_call_seconds)
            _remember_timing(self._transform, self._timed_calls, self._mean_call_seconds)

    def _use_inline(self) -> bool:
        with self._timing_lock:
            calls, mean = self._timed_calls, self._mean_call_seconds
        if self._inline:
            self._inline = mean < self._POOL_ABOVE_SECONDS
        elif calls >= self._INLINE_AFTER_CALLS and mean < self._INLINE_BELOW_SECONDS and not _loop_running():
            self._inline = True
        return self._inline


_TIMINGS: weakref.WeakKeyDictionary[Any, tuple[int, float]] = weakref.WeakKeyDictionary()


def _known_timing(transform: Any) -> tuple[int, float]:
    """(calls timed, mean seconds a call) of ``transform`` in this process so far."""
    try:
        return _TIMINGS.get(transform, (0, 0.0))
    except TypeError:  # not weakly referenceable: each stream times it afresh
        return 0, 0.0


def _remember_timing(transform: Any, calls: int, mean: float) -> None:
    try:
        _TIMINGS[transform] = (calls, mean)
    except TypeError:
        pass


def _loop_running() -> bool:
    """Inline calls would run user code (which may call asyncio.run) inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _get(span: Any, name: str) -> Any:
    if isinstance(span, Mapping):
        return span.get(name)
    return getattr(span, name, None)


async def _trace_spans(trace: Any) -> list[Any]:
    """Every span of the trace (for ``run_output`` when the pull embedded none)."""
    if isinstance(trace, PipelineTrace):
        return await trace.span_dicts()
    return await trace.get_spans(include_scorers=True)


async def _find_source_span(trace: Any, row_id: str) -> Any:
    """bt: the span whose ``id`` or ``span_id`` equals the ref id, scorers included."""
    for span in await _trace_spans(trace):
        if row_id in (_get(span, "id"), _get(span, "span_id")):
            return span
    raise SourceSpanNotFoundError(f"Source span row {row_id!r} was not found in hydrated trace.")


def transform_items(
    spec: PipelineSpec,
    items: Iterable[TransformItem | Mapping[str, Any]],
    *,
    trace_factory: TraceFactory | None = None,
    max_concurrency: int | None = None,
    on_error: Literal["fail", "skip"] | None = None,
    errors_path: str | os.PathLike[str] | None = None,
    validate: bool = True,
    on_progress: Callable[[TransformStats], None] | None = None,
    stats: TransformStats | None = None,
) -> TransformStream:
    """Stream the transform over ``items`` (``TransformItem`` or ``pulled.jsonl`` dicts).

    ``max_concurrency`` and ``on_error`` default to the pipeline's options. ``trace_factory``
    defaults to :func:`make_trace_factory()` with no fetcher (offline: only embedded spans).
    ``errors_path`` (required for ``skip``) is truncated when iteration starts; each failing
    item appends one line ``{"ref", "error", "traceback"}`` (also under ``fail``, before raising).
    Returns a :class:`TransformStream`; its ``stats`` are final once it is exhausted.
    """
    return TransformStream(
        spec,
        items,  # type: ignore[arg-type]
        trace_factory=trace_factory or make_trace_factory(),
        max_concurrency=max_concurrency if max_concurrency is not None else spec.options.max_concurrency,
        on_error=on_error if on_error is not None else spec.options.on_error,
        errors_path=Path(errors_path) if errors_path is not None else None,
        validate=validate,
        on_progress=on_progress,
        stats=stats if stats is not None else TransformStats(),
    )
