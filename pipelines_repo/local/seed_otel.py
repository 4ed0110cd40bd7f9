"""Demo traces sent the way OpenTelemetry apps send them: OTLP payloads posted to `/otel/v1/traces`.

They take the plane's real decode path (protobuf with gzip for even traces, OTLP/JSON for odd
ones) and carry the GenAI conventions: a root `task` span with `braintrust.*` input and output,
and `llm` children with `gen_ai.*` prompt, completion, model and usage, plus
`braintrust.metadata.run_output` (what dataset exports copy). Deterministic for a seed and end.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import datetime
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

QUESTIONS = [
    ("Can I export my invoices as CSV?", "Yes: Billing > Invoices > Export CSV."),
    ("How do I rotate my API key?", "Settings > API keys > Rotate; the old key stops working in 24 hours."),
    ("Is there a student discount?", "Yes, 50% off the Pro plan with a school email address."),
]


def _span(rng: random.Random, trace_id: str, parent: str, name: str, start: float, end: float, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"trace_id": trace_id, "span_id": "%016x" % rng.getrandbits(64), "parent": parent, "name": name,
            "start": int(start * 1e9), "end": int(end * 1e9), "attributes": attrs}


def otel_trace(rng: random.Random, t0: float) -> list[dict[str, Any]]:
    """One trace as neutral span dicts (hex ids, nanosecond times, attribute values)."""
    question, answer = rng.choice(QUESTIONS)
    trace_id = "%032x" % rng.getrandbits(128)
    root = _span(rng, trace_id, "", "support_request", t0, t0 + 2.5, {
        "braintrust.span_attributes.type": "task",
        "braintrust.input_json": json.dumps({"question": question}), "braintrust.output_json": json.dumps({"answer": answer}),
        "braintrust.metadata.source": "otel", "braintrust.tags": ["otel"], "service.version": "1.4.2",
    })
    spans = [root]
    offset = 0.1
    for step, completion in (("classify", "product"), ("respond", answer)):
        prompt, done = rng.randint(60, 600), rng.randint(5, 200)
        spans.append(_span(rng, trace_id, root["span_id"], f"chat {step}", t0 + offset, t0 + offset + 1.0, {
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "openai/gpt-4o-mini",
            "gen_ai.request.temperature": 0.2, "gen_ai.prompt.0.role": "system",
            "gen_ai.prompt.0.content": f"You are a support agent. Task: {step}.", "gen_ai.prompt.1.role": "user",
            "gen_ai.prompt.1.content": question, "gen_ai.completion": completion,
            "braintrust.metadata.run_output": completion,
            "gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": done,
        }))
        offset += 1.1
    return spans


def _set_any(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, list):
        for item in value:
            _set_any(target.array_value.values.add(), item)
    else:
        target.string_value = str(value)


def protobuf_payload(spans: list[dict[str, Any]]) -> bytes:
    """An `ExportTraceServiceRequest` (protobuf bytes) carrying `spans`."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    scope.scope.name = "bt-dagster.seed"
    for s in spans:
        span = scope.spans.add()
        span.trace_id, span.span_id = bytes.fromhex(s["trace_id"]), bytes.fromhex(s["span_id"])
        if s["parent"]:
            span.parent_span_id = bytes.fromhex(s["parent"])
        span.name, span.start_time_unix_nano, span.end_time_unix_nano = s["name"], s["start"], s["end"]
        for key, value in s["attributes"].items():
            kv = span.attributes.add()
            kv.key = key
            _set_any(kv.value, value)
    return request.SerializeToString()


def _json_any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 travels as a string in OTLP/JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_json_any(v) for v in value]}}
    return {"stringValue": str(value)}


def json_payload(spans: list[dict[str, Any]]) -> bytes:
    """The same request as OTLP/JSON (hex ids, string int64s)."""
    out = []
    for s in spans:
        span = {"traceId": s["trace_id"], "spanId": s["span_id"], "name": s["name"], "kind": 1,
                "startTimeUnixNano": str(s["start"]), "endTimeUnixNano": str(s["end"]),
                "attributes": [{"key": k, "value": _json_any(v)} for k, v in s["attributes"].items()]}
        if s["parent"]:
            span["parentSpanId"] = s["parent"]
        out.append(span)
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "bt-dagster.seed"}, "spans": out}]}]}).encode()


def seed_otel_traces(http: httpx.Client, project_name: str, *, traces: int, seed: int, end: datetime) -> int:
    """Post `traces` traces over the day before `end`; returns the number of spans sent."""
    rng = random.Random(seed * 1000 + 17)
    sent = 0
    day_start = end.timestamp() - 86400
    for i in range(traces):
        spans = otel_trace(rng, day_start + (i + 0.5) * 86400 / traces)
        # Children first, as a SimpleSpanProcessor would send them.
        ordered = spans[1:] + spans[:1]
        if i % 2 == 0:
            body, headers = gzip.compress(protobuf_payload(ordered)), {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
        else:
            body, headers = json_payload(ordered), {"content-type": "application/json"}
        http.post("/otel/v1/traces", content=body, headers={**headers, "x-bt-parent": f"project_name:{project_name}"}).raise_for_status()
        sent += len(spans)
    return sent
