"""OTLP/HTTP ingest (`POST /otel/v1/traces`) on a served plane, with the official OpenTelemetry
SDK and its OTLP/HTTP protobuf exporter, and with the braintrust SDK's `BraintrustSpanProcessor`.

Spans are read back through `/btql` and checked against what the tracer set (docs/BT_COMPAT.md §A.9).
"""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import datetime, timezone

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import ServedPlane


@pytest.fixture(scope="module")
def plane(served_plane: ServedPlane) -> ServedPlane:
    return served_plane


def _exporter(plane: ServedPlane, parent: str, *, key: str | None = None, compression: Compression = Compression.NoCompression) -> OTLPSpanExporter:
    headers = {"x-bt-parent": parent}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return OTLPSpanExporter(endpoint=f"{plane.url}/otel/v1/traces", headers=headers, compression=compression, timeout=10)


def _project_id(plane: ServedPlane, name: str) -> str | None:
    with plane.client() as http:
        found = http.get("/v1/project", params={"project_name": name}).json()["objects"]
    return found[0]["id"] if found else None


def _rows(plane: ServedPlane, project_id: str) -> dict[str, dict]:
    """The project's spans keyed by span name."""
    with plane.client() as http:
        response = http.post("/btql", json={"query": f"SELECT * FROM project_logs('{project_id}') LIMIT 1000"})
        response.raise_for_status()
    return {r["span_attributes"]["name"]: r for r in response.json()["data"]}


def _emit_trace(provider: TracerProvider) -> dict[str, str]:
    """A root `task` span, an `llm` child with the reference's attributes, a `tool` grandchild.

    Returns the OTel ids as hex, keyed by span name."""
    tracer = provider.get_tracer("bt-dagster-tests")
    ids: dict[str, str] = {}
    with tracer.start_as_current_span("support_request") as root:
        root.set_attribute("braintrust.input_json", json.dumps({"question": "refund?"}))
        root.set_attribute("braintrust.output", "refunded")
        root.set_attribute("braintrust.tags", ["a", "otel"])
        root.set_attribute("braintrust.span_attributes.type", "task")
        root.set_attribute("braintrust.metadata", json.dumps({"user_id": "u1"}))
        root.set_attribute("braintrust.scores.correctness", 0.75)
        with tracer.start_as_current_span("chat gpt-4o") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.request.model", "openai/gpt-4o")
            llm.set_attribute("gen_ai.request.temperature", 0.2)
            llm.set_attribute("gen_ai.prompt.0.role", "user")
            llm.set_attribute("gen_ai.prompt.0.content", "refund?")
            llm.set_attribute("gen_ai.completion", "Refunded.")
            llm.set_attribute("braintrust.metadata.run_output", "Refunded.")
            llm.set_attribute("gen_ai.usage.input_tokens", 12)
            llm.set_attribute("gen_ai.usage.output_tokens", 3)
            llm.set_attribute("http.route", "/chat")
            with tracer.start_as_current_span("lookup_order") as tool:
                tool.set_attribute("gen_ai.tool.name", "lookup_order")
                tool.set_attribute("braintrust.input_json", "{not json")
                ids["lookup_order"] = format(tool.get_span_context().span_id, "016x")
            ids["chat gpt-4o"] = format(llm.get_span_context().span_id, "016x")
        ids["support_request"] = format(root.get_span_context().span_id, "016x")
        ids["trace"] = format(root.get_span_context().trace_id, "032x")
    return ids


def _assert_trace(rows: dict[str, dict], ids: dict[str, str]) -> None:
    root, llm, tool = rows["support_request"], rows["chat gpt-4o"], rows["lookup_order"]
    for name, row in (("support_request", root), ("chat gpt-4o", llm), ("lookup_order", tool)):
        assert row["root_span_id"] == ids["trace"] and row["span_id"] == ids[name] == row["id"]
    assert root["is_root"] is True and root["span_parents"] == []
    assert llm["is_root"] is False and llm["span_parents"] == [ids["support_request"]]
    assert tool["is_root"] is False and tool["span_parents"] == [ids["chat gpt-4o"]]

    assert root["input"] == {"question": "refund?"} and root["output"] == "refunded"
    assert root["tags"] == ["a", "otel"] and root["metadata"] == {"user_id": "u1"}
    assert root["scores"] == {"correctness": 0.75}
    assert root["span_attributes"] == {"name": "support_request", "type": "task"}
    start, end = root["metrics"]["start"], root["metrics"]["end"]
    assert 1.6e9 < start <= end
    created = datetime.strptime(root["created"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(created.timestamp() - start) < 1e-5  # created is the start time, in microseconds

    assert llm["span_attributes"] == {"name": "chat gpt-4o", "type": "llm"}
    assert llm["input"] == [{"role": "user", "content": "refund?"}] and llm["output"] == "Refunded."
    assert llm["metadata"] == {"model": "gpt-4o", "temperature": 0.2, "run_output": "Refunded.", "http.route": "/chat"}
    assert {k: llm["metrics"][k] for k in ("prompt_tokens", "completion_tokens", "tokens")} == {
        "prompt_tokens": 12, "completion_tokens": 3, "tokens": 15,
    }
    assert start <= llm["metrics"]["start"] <= llm["metrics"]["end"] <= end

    assert tool["span_attributes"]["type"] == "tool"
    assert tool.get("input") is None and tool["metadata"]["braintrust.input_json"] == "{not json"
    assert tool["metadata"]["tools"] == [{"type": "function", "function": {"name": "lookup_order"}}]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def test_otel_sdk_exporter_trace_lands_as_project_logs(plane: ServedPlane, compression: Compression) -> None:
    project = f"otel-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider()
    # SimpleSpanProcessor exports each span as it ends: children reach the plane before parents.
    provider.add_span_processor(SimpleSpanProcessor(_exporter(plane, f"project_name:{project}", key=plane.api_key, compression=compression)))
    ids = _emit_trace(provider)
    provider.shutdown()
    project_id = _project_id(plane, project)
    assert project_id is not None, "project_name: creates the project"
    rows = _rows(plane, project_id)
    assert set(rows) == {"support_request", "chat gpt-4o", "lookup_order"}
    _assert_trace(rows, ids)
    # Root-only reads (the Logs view, trace-scope pipelines) see the trace once.
    with plane.client() as http:
        roots = http.post("/btql", json={"query": f"SELECT * FROM project_logs('{project_id}') WHERE is_root"}).json()["data"]
    assert [r["span_attributes"]["name"] for r in roots] == ["support_request"]


def test_braintrust_span_processor(plane: ServedPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    from braintrust.otel import BraintrustSpanProcessor

    project = f"otel-bt-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("BRAINTRUST_API_KEY", plane.api_key)
    monkeypatch.setenv("BRAINTRUST_API_URL", plane.url)
    provider = TracerProvider()
    provider.add_span_processor(BraintrustSpanProcessor(parent=f"project_name:{project}", SpanProcessor=SimpleSpanProcessor))
    ids = _emit_trace(provider)
    provider.shutdown()
    project_id = _project_id(plane, project)
    assert project_id is not None
    rows = _rows(plane, project_id)
    # The processor adds `braintrust.context_json` (span origin): it becomes the row's `context`.
    assert all("braintrust.context_json" not in (r.get("metadata") or {}) for r in rows.values())
    assert isinstance(rows["support_request"].get("context"), dict)
    _assert_trace(rows, ids)


def _finished_spans() -> tuple[list[ReadableSpan], dict[str, str]]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    ids = _emit_trace(provider)
    provider.shutdown()
    return list(memory.get_finished_spans()), ids


def test_child_exported_before_parent_in_separate_requests(plane: ServedPlane) -> None:
    project = f"otel-order-{uuid.uuid4().hex[:6]}"
    spans, ids = _finished_spans()
    exporter = _exporter(plane, f"project_name:{project}", key=plane.api_key)
    by_name = {s.name: s for s in spans}
    for name in ("lookup_order", "support_request", "chat gpt-4o"):  # grandchild, root, then the middle span
        assert exporter.export([by_name[name]]) == SpanExportResult.SUCCESS
    exporter.shutdown()
    _assert_trace(_rows(plane, _project_id(plane, project)), ids)


@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["no-key", "bad-key"])
def test_missing_or_bad_key_fails_the_export_and_stores_nothing(plane: ServedPlane, key: str | None) -> None:
    project = f"otel-auth-{uuid.uuid4().hex[:6]}"
    spans, _ = _finished_spans()
    exporter = _exporter(plane, f"project_name:{project}", key=key)
    assert exporter.export(spans) == SpanExportResult.FAILURE
    exporter.shutdown()
    assert _project_id(plane, project) is None
    headers = {"content-type": "application/x-protobuf"} | ({"Authorization": f"Bearer {key}"} if key else {})
    assert httpx.post(f"{plane.url}/otel/v1/traces", content=b"", headers=headers).status_code == 401


def _protobuf_body(spans: list[ReadableSpan]) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(spans).SerializeToString()


def _post(plane: ServedPlane, body: bytes, **headers: str) -> httpx.Response:
    with plane.client() as http:
        return http.post("/otel/v1/traces", content=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_refusals_unknown_content_type_truncated_body_and_parents(plane: ServedPlane) -> None:
    project = f"otel-bad-{uuid.uuid4().hex[:6]}"
    spans, _ = _finished_spans()
    body = _protobuf_body(spans)
    parent = f"project_name:{project}"
    assert _post(plane, body, content_type="text/plain", x_bt_parent=parent).status_code == 415
    assert _post(plane, body, content_type="application/x-protobuf", content_encoding="br", x_bt_parent=parent).status_code == 415
    truncated = _post(plane, body[:-3], content_type="application/x-protobuf", x_bt_parent=parent)
    assert truncated.status_code == 400 and "protobuf" in truncated.json()["message"]
    assert _post(plane, gzip.compress(body)[:-8], content_type="application/x-protobuf", content_encoding="gzip",
                 x_bt_parent=parent).status_code == 400
    assert _post(plane, b"{", content_type="application/json", x_bt_parent=parent).status_code == 400
    experiment = _post(plane, body, content_type="application/x-protobuf", x_bt_parent="experiment_id:e1")
    assert experiment.status_code == 400 and "no experiments" in experiment.json()["message"]
    assert _post(plane, body, content_type="application/x-protobuf").status_code == 400  # no parent at all
    unknown_id = _post(plane, body, content_type="application/x-protobuf", x_bt_parent=f"project_id:{uuid.uuid4()}")
    assert unknown_id.status_code == 404
    assert _post(plane, b"", content_type="application/x-protobuf", x_bt_parent=parent).status_code == 200
    assert _project_id(plane, project) is None, "nothing was stored by a refused (or empty) request"
    with plane.client() as http:
        assert http.post("/otel/v1/logs", content=b"", headers={"content-type": "application/x-protobuf"}).status_code == 404


def test_success_answers_an_empty_export_response_and_takes_deflate(plane: ServedPlane) -> None:
    project = f"otel-ok-{uuid.uuid4().hex[:6]}"
    spans, ids = _finished_spans()
    body = _protobuf_body(spans)
    ok = _post(plane, zlib.compress(body), content_type="application/x-protobuf", content_encoding="deflate",
               x_bt_parent=f"project_name:{project}")
    assert ok.status_code == 200 and ok.content == b"" and ok.headers["content-type"] == "application/x-protobuf"
    project_id = _project_id(plane, project)
    _assert_trace(_rows(plane, project_id), ids)
    # Sending the same spans again, by project id, replaces the rows (ids come from the OTel ids).
    again = _post(plane, body, content_type="application/x-protobuf", x_bt_parent=f"project_id:{project_id}")
    assert again.status_code == 200
    with plane.client() as http:  # every stored row, not keyed by name: a duplicate would show
        stored = http.post("/btql", json={"query": f"SELECT id FROM project_logs('{project_id}') LIMIT 1000"}).json()["data"]
    assert sorted(r["id"] for r in stored) == sorted(set(r["id"] for r in _rows(plane, project_id).values())) and len(stored) == 3


def test_otlp_json_body(plane: ServedPlane) -> None:
    project = f"otel-json-{uuid.uuid4().hex[:6]}"
    trace_id, root_id, child_id = uuid.uuid4().hex, uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    start = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z

    def attr(key: str, value: dict) -> dict:
        return {"key": key, "value": value}

    body = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", {"stringValue": "svc"})]}, "scopeSpans": [{
        "scope": {"name": "t"},
        "spans": [
            {"traceId": trace_id, "spanId": child_id, "parentSpanId": root_id, "name": "chat", "kind": 3,
             "startTimeUnixNano": str(start + 10**8), "endTimeUnixNano": str(start + 9 * 10**8),
             "attributes": [
                 attr("gen_ai.operation.name", {"stringValue": "chat"}),
                 attr("gen_ai.usage.input_tokens", {"intValue": "7"}),
                 attr("braintrust.metadata.run_output", {"stringValue": "hi"}),
                 attr("braintrust.tags", {"arrayValue": {"values": [{"stringValue": "j"}]}}),
                 attr("braintrust.metadata", {"kvlistValue": {"values": [attr("nested", {"boolValue": True})]}}),
             ],
             "events": [{"timeUnixNano": str(start + 2 * 10**8), "name": "gen_ai.user.message", "attributes": [attr("content", {"stringValue": "hello"})]},
                        {"timeUnixNano": str(start + 8 * 10**8), "name": "gen_ai.choice", "attributes": [attr("message", {"stringValue": "{\"content\": \"hi\"}"})]}]},
            {"traceId": trace_id, "spanId": root_id, "name": "root", "kind": 1,
             "startTimeUnixNano": str(start), "endTimeUnixNano": start + 10**9, "status": {"code": 2, "message": "boom"}},
        ],
    }]}]}
    raw = json.dumps(body).encode()
    ok = _post(plane, gzip.compress(raw), content_type="application/json", content_encoding="gzip", x_bt_parent=f"project_name:{project}")
    assert ok.status_code == 200 and ok.json() == {}
    rows = _rows(plane, _project_id(plane, project))
    root, chat = rows["root"], rows["chat"]
    assert root["is_root"] and root["span_parents"] == [] and root["error"] == "boom"
    assert root["created"] == "2026-01-01T00:00:00.000000Z" and root["metrics"] == {"start": 1767225600.0, "end": 1767225601.0}
    assert chat["root_span_id"] == trace_id and chat["span_parents"] == [root_id] and chat["id"] == child_id
    assert chat["span_attributes"]["type"] == "llm" and chat["metrics"]["prompt_tokens"] == 7
    assert chat["metadata"] == {"nested": True, "run_output": "hi"} and chat["tags"] == ["j"]
    assert chat["input"] == [{"role": "user", "content": "hello"}]
    assert chat["output"] == [{"role": "assistant", "message": {"content": "hi"}}]
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "AAEC", "spanId": child_id}]}]}]}
    assert _post(plane, json.dumps(bad_id).encode(), content_type="application/json", x_bt_parent=f"project_name:{project}").status_code == 400


def test_seed_sends_otel_traces_through_the_otlp_route(tmp_path) -> None:
    from pipelines_repo.local.seed import seed_demo_logs
    from pipelines_repo.local.transport import InProcessTransport

    end = datetime(2026, 1, 10, tzinfo=timezone.utc)
    transport = InProcessTransport(tmp_path / "seed.db")
    with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL) as http:
        result = seed_demo_logs(http, "Support", days=2, spans_per_day=20, end=end, otel_traces=3)
        rows = http.post("/btql", json={"query": f"SELECT * FROM project_logs('{result.project_id}') LIMIT 1000"}).json()["data"]
    assert (result.spans, result.otel_traces, result.otel_spans) == (40, 3, 9)
    otel = [r for r in rows if r["root_span_id"] in {x["root_span_id"] for x in rows if "otel" in (x.get("tags") or [])}]
    assert len(otel) == 9 and len(rows) == 49
    llm = [r for r in otel if r["span_attributes"].get("type") == "llm"]
    assert len(llm) == 6 and all(r["metadata"]["run_output"] == r["output"] and r["metrics"]["tokens"] > 0 for r in llm)
    assert all(r["created"].startswith("2026-01-09") for r in otel)
