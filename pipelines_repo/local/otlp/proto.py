"""Protobuf `ExportTraceServiceRequest` bodies, decoded by the generated classes of `opentelemetry-proto`."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .spans import OtlpError, OtlpEvent, OtlpSpan


def any_value(value: AnyValue) -> Any:
    """An OTLP AnyValue as a plain Python value (an unset value is None)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")  # as OTLP/JSON spells bytes
    return getattr(value, kind)


def _hex_id(raw: bytes, size: int, what: str, optional: bool = False) -> str:
    if optional and not raw:
        return ""
    if len(raw) != size or not any(raw):
        raise OtlpError(f"span {what} must be {size} bytes and not all zero, got {raw.hex()!r}")
    return raw.hex()


def spans_from_protobuf(raw: bytes) -> list[OtlpSpan]:
    """Decode a protobuf body (400 when it does not parse, e.g. a truncated body)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(raw)
    except DecodeError as exc:
        raise OtlpError(f"body is not a protobuf ExportTraceServiceRequest ({exc}): send the exporter's bytes unchanged") from exc
    spans: list[OtlpSpan] = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for s in scope_spans.spans:
                spans.append(OtlpSpan(
                    trace_id=_hex_id(s.trace_id, 16, "trace_id"),
                    span_id=_hex_id(s.span_id, 8, "span_id"),
                    parent_span_id=_hex_id(s.parent_span_id, 8, "parent_span_id", optional=True),
                    name=s.name,
                    start_time_unix_nano=s.start_time_unix_nano,
                    end_time_unix_nano=s.end_time_unix_nano,
                    attributes={kv.key: any_value(kv.value) for kv in s.attributes},
                    events=[
                        OtlpEvent(e.name, e.time_unix_nano, {kv.key: any_value(kv.value) for kv in e.attributes})
                        for e in s.events
                    ],
                    status_code=int(s.status.code),
                    status_message=s.status.message,
                ))
    return spans
