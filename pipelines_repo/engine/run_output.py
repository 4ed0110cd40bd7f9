"""Runtime output in dataset rows (pipeline option ``run_output``).

Dataset rows have no ``output``: Braintrust's "Add to dataset" maps a span's output to ``expected``,
and users who want what the model said at runtime beside the ground truth keep it in
``metadata.run_output``. With ``run_output`` set, every row a transform returns gets, in its
metadata, ``run_output`` (the chosen span's output), ``span_id`` and ``root_span_id`` (of that
span), unless the transform set ``run_output`` itself; ``expected`` is never touched.

Which span:
- span scope: the source span (with a span type, only when the source span is of that type);
- trace scope, ``run_output=True``: the root span, or, when the root has no output, the last span
  (by end time) that has one;
- trace scope, ``run_output="<type>"``: the last span of that type that has an output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["attach_run_output", "choose_span"]


def _get(span: Any, name: str) -> Any:
    return span.get(name) if isinstance(span, Mapping) else getattr(span, name, None)


def _type(span: Any) -> Any:
    attributes = _get(span, "span_attributes")
    return attributes.get("type") if isinstance(attributes, Mapping) else None


def _end(span: Any) -> tuple:
    metrics = _get(span, "metrics") or {}
    return (metrics.get("end") or metrics.get("start") or 0, str(_get(span, "created") or ""))


def choose_span(option: bool | str, *, source: Any = None, spans: Sequence[Any] | None = None) -> Any:
    """The span whose output becomes ``run_output`` (see the module doc), or None."""
    if not option:
        return None
    if source is not None:  # span scope
        return source if option is True or _type(source) == option else None
    spans = [s for s in spans or () if _get(s, "output") is not None]
    if option is True:
        roots = [s for s in spans if not _get(s, "span_parents") or _get(s, "span_id") == _get(s, "root_span_id")]
        if roots:
            return roots[0]
        return max(spans, key=_end, default=None)
    return max((s for s in spans if _type(s) == option), key=_end, default=None)


def attach_run_output(rows: list[dict[str, Any]], span: Any) -> None:
    """Put the span's output and ids into each row's metadata (a transform's own run_output wins)."""
    if span is None or _get(span, "output") is None:
        return
    for row in rows:
        metadata = row.get("metadata")
        if metadata is None:
            metadata = row["metadata"] = {}
        if not isinstance(metadata, dict) or "run_output" in metadata:
            continue  # a non-object metadata fails row validation with its own message
        metadata["run_output"] = _get(span, "output")
        metadata.setdefault("span_id", _get(span, "span_id"))
        metadata.setdefault("root_span_id", _get(span, "root_span_id"))
