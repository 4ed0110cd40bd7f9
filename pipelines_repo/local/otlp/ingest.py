"""One OTLP export request, end to end: decode, resolve parents, map, write under one `_xact_id`."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ..store import LocalStore
from .decode import JSON, PROTOBUF, decode_spans, media_type
from .mapping import PARENT_ATTRIBUTE, span_row
from .parent import ParentResolver

# The OTLP success answer is an empty ExportTraceServiceResponse in the request's encoding.
_EMPTY = {PROTOBUF: ExportTraceServiceResponse().SerializeToString(), JSON: b"{}"}


@dataclass(frozen=True)
class IngestResult:
    body: bytes
    media_type: str
    spans: int
    xact_id: int | None


def ingest(
    store: LocalStore, body: bytes, *, content_type: str | None, content_encoding: str | None, parent: str | None
) -> IngestResult:
    """Store every span of one export request as a project-log row (OtlpError/StoreError on refusal)."""
    kind = media_type(content_type)  # 415 before any decoding work
    spans = decode_spans(body, content_type, content_encoding)
    resolver = ParentResolver(store, parent)
    rows = [
        span_row(span, {"project_id": resolver.project_id(span.attributes.get(PARENT_ATTRIBUTE)), "log_id": "g"})
        for span in spans
    ]
    xact = store.write_rows(rows)[0] if rows else None
    return IngestResult(_EMPTY[kind], kind, len(rows), xact)
