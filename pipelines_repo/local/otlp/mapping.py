"""One OTel span to one logs3 row: ids, times, name, and the `braintrust.*` attribute namespace.

Ids come from the OTel ids themselves (trace id -> `root_span_id`, span id -> `span_id` and the
row `id`, parent span id -> `span_parents`), so spans can arrive in any order, in any request,
and a re-sent span replaces its row. Precedence: `braintrust.*` over `gen_ai.*` over attributes
left over (those go to `metadata` under their own keys). A `_json` attribute that is not valid
JSON stays in `metadata` under its key and the field stays null, as Braintrust does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .genai import take_genai
from .spans import OtlpSpan
from .values import MISSING, deep_merge, parse_json, take_prefixed, unflatten

# Braintrust fields that must be JSON objects, and those that may be any value.
_OBJECT_FIELDS = ("metadata", "metrics", "scores", "span_attributes", "origin", "context")
_VALUE_FIELDS = ("input", "output", "expected")
_CODE_CONTEXT = {
    "code.function.name": "caller_functionname", "code.file.path": "caller_filename", "code.line.number": "caller_lineno",
}
PARENT_ATTRIBUTE = "braintrust.parent"


def take_braintrust_field(attrs: dict[str, Any], name: str, unparsed: dict[str, Any]) -> Any:
    """Take `braintrust.<name>_json`, `braintrust.<name>` and flattened `braintrust.<name>.*` off
    `attrs` and combine them (MISSING when none is set); values that do not parse go to `unparsed`."""
    key = f"braintrust.{name}"
    as_object = name in _OBJECT_FIELDS
    value = MISSING
    raw_json = attrs.pop(f"{key}_json", MISSING)
    if raw_json is not MISSING:
        value = parse_json(raw_json)
        if value is MISSING or (as_object and not isinstance(value, dict)):
            unparsed[f"{key}_json"], value = raw_json, MISSING
    raw = attrs.pop(key, MISSING)
    if raw is not MISSING and value is MISSING:
        value = parse_json(raw) if as_object and isinstance(raw, str) else raw
        if as_object and not isinstance(value, dict):
            unparsed[key], value = raw, MISSING
    flat = take_prefixed(attrs, f"{key}.")
    if flat:
        nested = unflatten(flat)
        value = nested if value is MISSING else deep_merge(value, nested) if isinstance(value, dict) else value
    return value


def iso_from_nanos(nanos: int) -> str:
    """Unix nanoseconds as canonical UTC text (microseconds, like every `created`)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(span: OtlpSpan) -> str | None:
    """OTel status ERROR as Braintrust's `error` text (the status message, else the exception event)."""
    if span.status_code != 2:
        return None
    if span.status_message:
        return span.status_message
    for event in span.events:
        if event.name == "exception":
            kind, message = event.attributes.get("exception.type"), event.attributes.get("exception.message")
            return ": ".join(str(p) for p in (kind, message) if p) or "error"
    return "error"


def _context(attrs: dict[str, Any], unparsed: dict[str, Any]) -> Any:
    context = take_braintrust_field(attrs, "context", unparsed)
    callers = {name: attrs.pop(key) for key, name in _CODE_CONTEXT.items() if key in attrs}
    if callers:
        context = {**(context if isinstance(context, dict) else {}), **callers}
    return context


def span_row(span: OtlpSpan, route: dict[str, Any]) -> dict[str, Any]:
    """The logs3 row for `span`, routed by `route` (`project_id` and `log_id`)."""
    attrs = dict(span.attributes)
    attrs.pop(PARENT_ATTRIBUTE, None)  # routes the span (see ingest), not data
    unparsed: dict[str, Any] = {}
    fields = {name: take_braintrust_field(attrs, name, unparsed) for name in (*_VALUE_FIELDS, *_OBJECT_FIELDS) if name != "context"}
    context = _context(attrs, unparsed)
    tags = attrs.pop("braintrust.tags", None)
    genai = take_genai(attrs, span.events)
    unparsed.update(genai.unparsed)

    metadata = deep_merge({**attrs, **unparsed, **genai.metadata}, fields["metadata"] if fields["metadata"] is not MISSING else {})
    metrics: dict[str, Any] = {}
    if span.start_time_unix_nano:
        metrics["start"] = span.start_time_unix_nano / 1e9
    if span.end_time_unix_nano:
        metrics["end"] = span.end_time_unix_nano / 1e9
    metrics = deep_merge({**metrics, **genai.metrics}, fields["metrics"] if fields["metrics"] is not MISSING else {})
    span_attributes: dict[str, Any] = {"name": span.name}
    if genai.type:
        span_attributes["type"] = genai.type
    if fields["span_attributes"] is not MISSING:
        span_attributes = deep_merge(span_attributes, fields["span_attributes"])

    row: dict[str, Any] = {
        "id": span.span_id, "span_id": span.span_id, "root_span_id": span.trace_id,
        "span_parents": [span.parent_span_id] if span.parent_span_id else [],
        **route,
    }
    if span.start_time_unix_nano:
        row["created"] = iso_from_nanos(span.start_time_unix_nano)
    for name, fallback in (("input", genai.input), ("output", genai.output), ("expected", MISSING)):
        value = fields[name] if fields[name] is not MISSING else fallback
        if value is not MISSING:
            row[name] = value
    if metadata:
        row["metadata"] = metadata
    row.update(metrics=metrics, span_attributes=span_attributes)
    for name, value in (("scores", fields["scores"]), ("origin", fields["origin"]), ("context", context)):
        if value is not MISSING and value is not None:
            row[name] = value
    if isinstance(tags, list) and tags:
        row["tags"] = [str(t) for t in tags]
    error = _error(span)
    if error:
        row["error"] = error
    return row
