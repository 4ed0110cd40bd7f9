"""Unit tests of OTLP ingest's pure parts: decoders, attribute helpers, the span -> row mapping."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pipelines_repo.local.otlp.decode import decode_spans, inflate, media_type
from pipelines_repo.local.otlp.genai import take_genai
from pipelines_repo.local.otlp.mapping import iso_from_nanos, span_row, take_braintrust_field
from pipelines_repo.local.otlp.otjson import any_value as json_any_value
from pipelines_repo.local.otlp.parent import parse_parent
from pipelines_repo.local.otlp.spans import OtlpError, OtlpEvent, OtlpSpan
from pipelines_repo.local.otlp.values import MISSING, unflatten

ROUTE = {"project_id": "p", "log_id": "g"}
T0 = 1_767_225_600_000_000_000


def _span(attributes: dict, *, parent: str = "", events: list | None = None, **kw) -> OtlpSpan:
    return OtlpSpan("ab" * 16, "cd" * 8, parent, kw.pop("name", "s"), T0, T0 + 1_500_000_000, attributes, events or [], **kw)


def test_unflatten_builds_lists_from_index_keys() -> None:
    assert unflatten({"0.role": "user", "0.content": "hi", "1.role": "assistant"}) == [
        {"role": "user", "content": "hi"}, {"role": "assistant"},
    ]
    assert unflatten({"a.b": 1, "a.c": 2, "d": 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    assert unflatten({"1": "x"}) == {"1": "x"}  # not 0..n-1: stays a dict


def test_braintrust_field_forms_and_fallback() -> None:
    unparsed: dict = {}
    attrs = {"braintrust.metadata": '{"a": 1}', "braintrust.metadata.b.c": 2, "braintrust.input_json": "[1", "x": 1}
    assert take_braintrust_field(attrs, "metadata", unparsed) == {"a": 1, "b": {"c": 2}}
    assert take_braintrust_field(attrs, "input", unparsed) is MISSING
    assert unparsed == {"braintrust.input_json": "[1"} and attrs == {"x": 1}
    assert take_braintrust_field({"braintrust.input": "plain"}, "input", {}) == "plain"  # not parsed
    assert take_braintrust_field({"braintrust.input.0.role": "user"}, "input", {}) == [{"role": "user"}]
    bad: dict = {}
    assert take_braintrust_field({"braintrust.scores": "[1]"}, "scores", bad) is MISSING and bad == {"braintrust.scores": "[1]"}


def test_row_ids_times_and_hierarchy() -> None:
    root = span_row(_span({}), ROUTE)
    assert root["id"] == root["span_id"] == "cd" * 8 and root["root_span_id"] == "ab" * 16
    assert root["span_parents"] == [] and root["project_id"] == "p" and root["log_id"] == "g"
    assert root["created"] == "2026-01-01T00:00:00.000000Z" == iso_from_nanos(T0)
    assert root["metrics"] == {"start": 1767225600.0, "end": 1767225601.5}
    assert root["span_attributes"] == {"name": "s"} and "input" not in root and "metadata" not in root
    child = span_row(_span({}, parent="ef" * 8), ROUTE)
    assert child["span_parents"] == ["ef" * 8]


def test_row_fields_and_precedence() -> None:
    row = span_row(_span({
        "braintrust.output_json": '{"answer": 1}', "gen_ai.completion": "ignored: braintrust wins",
        "gen_ai.prompt": "q", "braintrust.expected": "e", "braintrust.tags": ["t1", "t2"],
        "braintrust.metrics": '{"tokens": 99}', "gen_ai.usage.input_tokens": 4,
        "braintrust.span_attributes": '{"type": "eval"}', "gen_ai.operation.name": "chat",
        "braintrust.metadata.model": "mine", "gen_ai.request.model": "openai/gpt-4o",
        "braintrust.parent": "project_name:x", "braintrust.context_json": '{"span_origin": {"name": "sdk"}}',
        "code.function.name": "f", "code.line.number": 3, "service.custom": "kept",
    }), ROUTE)
    assert row["output"] == {"answer": 1} and row["input"] == "q" and row["expected"] == "e"
    assert row["tags"] == ["t1", "t2"]
    assert row["metrics"]["tokens"] == 99 and row["metrics"]["prompt_tokens"] == 4
    assert row["span_attributes"] == {"name": "s", "type": "eval"}
    assert row["metadata"] == {"model": "mine", "service.custom": "kept"}
    assert row["context"] == {"span_origin": {"name": "sdk"}, "caller_functionname": "f", "caller_lineno": 3}


def test_genai_conventions() -> None:
    attrs = {
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]),
        "gen_ai.output.messages": "[broken", "gen_ai.request.max_tokens": 100, "gen_ai.request.top_p": 0.9,
        "gen_ai.usage": '{"prompt_tokens": 2, "completion_tokens": 5}', "gen_ai.agent.tools": ["search"],
        "gen_ai.operation.name": "execute_tool", "gen_ai.system": "openai",
    }
    out = take_genai(attrs, [])
    assert out.input == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert out.output is MISSING and out.unparsed == {"gen_ai.output.messages": "[broken"}
    assert out.metadata == {"max_tokens": 100, "top_p": 0.9, "tools": [{"type": "function", "function": {"name": "search"}}]}
    assert out.metrics == {"prompt_tokens": 2, "completion_tokens": 5, "tokens": 7}
    assert out.type == "tool" and attrs == {"gen_ai.system": "openai"}  # unmapped keys stay for metadata
    events = [OtlpEvent("gen_ai.system.message", T0, {"content": "be brief"}), OtlpEvent("gen_ai.choice", T0, {"index": 0})]
    from_events = take_genai({"gen_ai.prompt": "overridden by events"}, events)
    assert from_events.input == [{"role": "system", "content": "be brief"}]
    assert from_events.output == [{"role": "assistant", "index": 0}]
    assert take_genai({"gen_ai.operation.name": "embeddings"}, []).type is None


def test_error_status() -> None:
    assert span_row(_span({}, status_code=2, status_message="boom"), ROUTE)["error"] == "boom"
    exc = OtlpEvent("exception", T0, {"exception.type": "ValueError", "exception.message": "bad"})
    assert span_row(_span({}, events=[exc], status_code=2), ROUTE)["error"] == "ValueError: bad"
    assert "error" not in span_row(_span({}, events=[exc], status_code=1), ROUTE)


def test_json_any_value_kinds() -> None:
    assert json_any_value({"intValue": "9007199254740993"}) == 9007199254740993
    assert json_any_value({"doubleValue": 1.5}) == 1.5 and json_any_value({"boolValue": False}) is False
    assert json_any_value({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}) == ["a", 2]
    assert json_any_value({"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}}) == {"k": "v"}
    assert json_any_value({"bytesValue": "AAE="}) == "AAE=" and json_any_value({}) is None


def _protobuf(trace_id: bytes = bytes(range(1, 17)), span_id: bytes = bytes(range(1, 9))) -> bytes:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, span_id, "n"
    kv = span.attributes.add()
    kv.key = "a"
    kv.value.array_value.values.add().int_value = 5
    return request.SerializeToString()


def test_decoders_and_encodings() -> None:
    body = _protobuf()
    for encoded, encoding in ((body, None), (gzip.compress(body), "gzip"), (zlib.compress(body), "deflate"),
                              (zlib.compress(body)[2:-4], "deflate")):  # raw deflate too
        (span,) = decode_spans(encoded, "application/x-protobuf", encoding)
        assert span.trace_id == bytes(range(1, 17)).hex() and span.parent_span_id == "" and span.attributes == {"a": [5]}
    assert media_type("application/json; charset=utf-8") == "application/json"
    with pytest.raises(OtlpError) as info:
        media_type("application/grpc")
    assert info.value.status == 415
    with pytest.raises(OtlpError) as info:
        inflate(b"x", "zstd")
    assert info.value.status == 415
    with pytest.raises(OtlpError):
        decode_spans(_protobuf(trace_id=b"\0" * 16), "application/x-protobuf", None)  # invalid trace id
    with pytest.raises(OtlpError):
        decode_spans(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "01"}]}]}]}', "application/json", None)
    assert decode_spans(b"", "application/json", None) == [] == decode_spans(b"", "application/x-protobuf", None)


def test_parent_values() -> None:
    assert parse_parent("project_name:My Project").value == "My Project"
    assert parse_parent("project_id:123").kind == "project_id"
    for bad in ("experiment_id:e", "project_name:", "eyJzbHVnIjoxfQ==", "dataset_id:d"):
        with pytest.raises(OtlpError):
            parse_parent(bad)
