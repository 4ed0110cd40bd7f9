"""OTLP/JSON bodies, per the OTLP spec's JSON mapping of the protobuf messages.

Where it differs from protobuf's canonical JSON: trace and span ids are hex (not base64), and
enums are integers. 64-bit integers may be strings. Field names are lowerCamelCase; snake_case
names are accepted too, as protobuf JSON parsers do.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .spans import OtlpError, OtlpEvent, OtlpSpan

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _get(obj: dict[str, Any], camel: str, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
    return obj.get(snake, default)


def _list(obj: dict[str, Any], camel: str) -> list[Any]:
    value = _get(obj, camel) or []
    if not isinstance(value, list):
        raise OtlpError(f"OTLP/JSON field {camel!r} must be a list")
    return value


def _int(value: Any, what: str) -> int:
    if value in (None, ""):
        return 0
    try:
        return int(value)  # int64 fields arrive as JSON strings or numbers
    except (TypeError, ValueError) as exc:
        raise OtlpError(f"OTLP/JSON {what} must be an integer (or its decimal string), got {value!r}") from exc


def _hex_id(value: Any, size: int, what: str, optional: bool = False) -> str:
    text = value or ""
    if optional and not text:
        return ""
    if not isinstance(text, str) or len(text) != 2 * size or not _HEX.match(text) or not text.strip("0"):
        raise OtlpError(f"OTLP/JSON {what} must be {2 * size} hex digits and not all zero, got {value!r}")
    return text.lower()


def any_value(value: Any) -> Any:
    """An OTLP/JSON AnyValue object as a plain Python value (an empty object is None)."""
    if not isinstance(value, dict) or not value:
        return None
    for key in ("stringValue", "string_value"):
        if key in value:
            return value[key]
    for key in ("boolValue", "bool_value"):
        if key in value:
            return bool(value[key])
    for key in ("intValue", "int_value"):
        if key in value:
            return _int(value[key], "intValue")
    for key in ("doubleValue", "double_value"):
        if key in value:
            raw = value[key]
            return float(raw) if not isinstance(raw, str) else float({"Infinity": "inf", "-Infinity": "-inf"}.get(raw, raw))
    for key in ("arrayValue", "array_value"):
        if key in value:
            return [any_value(v) for v in _list(value[key] or {}, "values")]
    for key in ("kvlistValue", "kvlist_value"):
        if key in value:
            return attributes(_list(value[key] or {}, "values"))
    for key in ("bytesValue", "bytes_value"):
        if key in value:
            return value[key]  # already base64 text in OTLP/JSON
    return None


def attributes(items: list[Any]) -> dict[str, Any]:
    """A list of OTLP/JSON KeyValue objects as a dict."""
    out: dict[str, Any] = {}
    for kv in items:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise OtlpError("OTLP/JSON attributes must be objects with a string `key` and a `value`")
        out[kv["key"]] = any_value(kv.get("value"))
    return out


def _span(s: Any) -> OtlpSpan:
    if not isinstance(s, dict):
        raise OtlpError("each OTLP/JSON span must be an object")
    status = _get(s, "status") or {}
    code = status.get("code", 0) if isinstance(status, dict) else 0
    return OtlpSpan(
        trace_id=_hex_id(_get(s, "traceId"), 16, "traceId"),
        span_id=_hex_id(_get(s, "spanId"), 8, "spanId"),
        parent_span_id=_hex_id(_get(s, "parentSpanId"), 8, "parentSpanId", optional=True),
        name=str(_get(s, "name", "") or ""),
        start_time_unix_nano=_int(_get(s, "startTimeUnixNano"), "startTimeUnixNano"),
        end_time_unix_nano=_int(_get(s, "endTimeUnixNano"), "endTimeUnixNano"),
        attributes=attributes(_list(s, "attributes")),
        events=[
            OtlpEvent(str(_get(e, "name", "") or ""), _int(_get(e, "timeUnixNano"), "timeUnixNano"), attributes(_list(e, "attributes")))
            for e in _list(s, "events") if isinstance(e, dict)
        ],
        status_code=_STATUS_CODES.get(code, 0) if isinstance(code, str) else _int(code, "status.code"),
        status_message=str(status.get("message", "") if isinstance(status, dict) else ""),
    )


def spans_from_json(raw: bytes) -> list[OtlpSpan]:
    """Decode an OTLP/JSON body (400 when it is not JSON or not an ExportTraceServiceRequest)."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise OtlpError(f"body is not valid JSON ({exc}): send an OTLP/JSON ExportTraceServiceRequest") from exc
    if not isinstance(body, dict):
        raise OtlpError("OTLP/JSON body must be an object with `resourceSpans`")
    spans: list[OtlpSpan] = []
    for resource_spans in _list(body, "resourceSpans"):
        for scope_spans in _list(resource_spans if isinstance(resource_spans, dict) else {}, "scopeSpans"):
            spans.extend(_span(s) for s in _list(scope_spans if isinstance(scope_spans, dict) else {}, "spans"))
    return spans

