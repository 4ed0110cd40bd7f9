"""The neutral span both decoders produce, and the error the OTLP route answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..store import StoreError


class OtlpError(StoreError):
    """A request the OTLP route refuses; `status` is its HTTP status (400, 404, 413, 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class OtlpEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class OtlpSpan:
    """One span, ids as lower-case hex (`parent_span_id` is "" for a root), attribute values as
    plain Python values (str, bool, int, float, list, dict; bytes as base64 text)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[OtlpEvent] = field(default_factory=list)
    status_code: int = 0  # 0 unset, 1 ok, 2 error (OTLP StatusCode)
    status_message: str = ""
