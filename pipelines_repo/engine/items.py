"""The pull stage's output and the transform's input: :class:`TransformItem`.

A :class:`TransformItem` is a ref in bt's ``pulled.jsonl`` shape (``root_span_id``, ``id`` in span
scope, ``origin``) plus, when the pull stage embedded them, the span's payload (``span``, span
scope) or the trace's spans (``spans``, trace scope). In ``pulled.jsonl`` and its payload sidecar
these travel as extra keys ``"span"`` / ``"spans"`` beside the ref keys (bt ignores unknown keys),
see :meth:`TransformItem.from_json` / :meth:`TransformItem.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TransformItem"]

PULLED_SPAN_KEY = "span"
PULLED_SPANS_KEY = "spans"


@dataclass(frozen=True, slots=True)
class TransformItem:
    """One candidate: a bt ref plus the span payload (span scope) or the trace's spans (trace scope)."""

    ref: Mapping[str, Any]
    span: Mapping[str, Any] | None = None
    spans: list[Mapping[str, Any]] | None = None

    @property
    def root_span_id(self) -> str | None:
        value = self.ref.get("root_span_id")
        return value if isinstance(value, str) and value else None

    @property
    def id(self) -> str | None:
        """The source span row id (span scope), like bt's runner: only a non-empty string counts."""
        value = self.ref.get("id")
        return value if isinstance(value, str) and value else None

    @property
    def origin(self) -> dict[str, Any] | None:
        value = self.ref.get("origin")
        return dict(value) if isinstance(value, Mapping) else None

    @property
    def object_id(self) -> str | None:
        origin = self.ref.get("origin")
        value = origin.get("object_id") if isinstance(origin, Mapping) else None
        return value if isinstance(value, str) else None

    def describe(self) -> str:
        parts = [f"root_span_id={self.ref.get('root_span_id')!r}"]
        if "id" in self.ref:
            parts.append(f"id={self.ref.get('id')!r}")
        return " ".join(parts)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> TransformItem:
        """From a ``pulled.jsonl`` line: ref keys plus optional ``span`` / ``spans``."""
        if not isinstance(value, Mapping):
            raise ValueError(f"pulled ref must be a JSON object (got {type(value).__name__})")
        ref = {key: val for key, val in value.items() if key not in (PULLED_SPAN_KEY, PULLED_SPANS_KEY)}
        span = value.get(PULLED_SPAN_KEY)
        spans = value.get(PULLED_SPANS_KEY)
        return cls(
            ref=ref,
            span=span if isinstance(span, Mapping) else None,
            spans=list(spans) if isinstance(spans, list) else None,
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.ref)
        if self.span is not None:
            out[PULLED_SPAN_KEY] = dict(self.span)
        if self.spans is not None:
            out[PULLED_SPANS_KEY] = [dict(span) for span in self.spans]
        return out
