"""Benchmark: OTLP ingest (POST /otel/v1/traces) beside /logs3 ingest of the same spans, in one run.

    python benchmarks/otlp_ingest.py [--spans 50000] [--batch 512] [--gzip]

The spans: 5-span traces (a root `task` span, three `llm` children with `gen_ai.*` prompt,
completion, model and usage plus `braintrust.metadata.run_output`, one `tool` child). They are
sent once as protobuf `ExportTraceServiceRequest`s of `--batch` spans (512 is the
BatchSpanProcessor's default export size) to /otel/v1/traces, and once as the logs3 rows the
OTLP route makes of them (the plane's own mapping), 1000 rows a request to /logs3, each into a
fresh plane file. Both go through the in-process transport (the plane's ASGI app over httpx, no
socket), so the figures compare the routes and not the network. Payloads are built before the
clock starts: OTLP timings include decoding and mapping, the plane's real extra work. No
timing is asserted; this prints spans/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines_repo.local.otlp.proto import spans_from_protobuf  # noqa: E402
from pipelines_repo.local.otlp.mapping import span_row  # noqa: E402
from pipelines_repo.local.seed_otel import protobuf_payload  # noqa: E402
from pipelines_repo.local.transport import InProcessTransport  # noqa: E402

PROJECT = "OTLP bench"


def _attrs_llm(rng: random.Random, step: int) -> dict[str, Any]:
    completion = f"answer {rng.getrandbits(32):08x} for step {step}"
    return {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "openai/gpt-4o-mini",
        "gen_ai.request.temperature": 0.2, "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "You are a support agent.",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": f"question {rng.getrandbits(32):08x}",
        "gen_ai.completion": completion, "braintrust.metadata.run_output": completion,
        "gen_ai.usage.input_tokens": rng.randint(50, 900), "gen_ai.usage.output_tokens": rng.randint(5, 300),
    }


def generate(count: int, seed: int = 5) -> list[dict[str, Any]]:
    """`count` spans in 5-span traces, as neutral span dicts (see `seed_otel.protobuf_payload`)."""
    rng = random.Random(seed)
    spans: list[dict[str, Any]] = []
    t0 = time.time() - 86400
    while len(spans) < count:
        trace = "%032x" % rng.getrandbits(128)
        root = "%016x" % rng.getrandbits(64)
        start = int(t0 * 1e9)
        spans.append({"trace_id": trace, "span_id": root, "parent": "", "name": "support_request", "start": start,
                      "end": start + 3 * 10**9, "attributes": {
                          "braintrust.span_attributes.type": "task", "braintrust.input_json": json.dumps({"q": rng.random()}),
                          "braintrust.output_json": json.dumps({"a": rng.random()}), "braintrust.tags": ["otel"]}})
        for i in range(4):
            attrs = _attrs_llm(rng, i) if i < 3 else {"gen_ai.tool.name": "lookup_order", "braintrust.input_json": '{"order": 1}'}
            spans.append({"trace_id": trace, "span_id": "%016x" % rng.getrandbits(64), "parent": root, "name": f"step {i}",
                          "start": start + i * 5 * 10**8, "end": start + (i + 1) * 5 * 10**8, "attributes": attrs})
        t0 += 1.7
    return spans[:count]


def _timed(db: Path, requests: list[tuple[str, bytes, dict[str, str]]]) -> float:
    transport = InProcessTransport(db)
    with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL, timeout=300) as http:
        http.post("/v1/project", json={"name": PROJECT}).raise_for_status()
        started = time.perf_counter()
        for path, body, headers in requests:
            http.post(path, content=body, headers=headers).raise_for_status()
        elapsed = time.perf_counter() - started
    transport.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request (BatchSpanProcessor default 512)")
    parser.add_argument("--gzip", action="store_true", help="gzip the OTLP bodies (Content-Encoding: gzip)")
    args = parser.parse_args()

    spans = generate(args.spans)
    otlp_headers = {"content-type": "application/x-protobuf", "x-bt-parent": f"project_name:{PROJECT}"}
    if args.gzip:
        otlp_headers["content-encoding"] = "gzip"
    otlp: list[tuple[str, bytes, dict[str, str]]] = []
    logs3: list[tuple[str, bytes, dict[str, str]]] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for start in range(0, len(spans), args.batch):
            body = protobuf_payload(spans[start : start + args.batch])
            otlp.append(("/otel/v1/traces", gzip.compress(body) if args.gzip else body, otlp_headers))
            rows.extend(span_row(s, {"project_id": "PROJECT_ID", "log_id": "g"}) for s in spans_from_protobuf(body))
        otlp_seconds = _timed(Path(tmp) / "otlp.db", otlp)
        # The logs3 plane is a fresh file: its project id is known only once created, so build its bodies then.
        transport = InProcessTransport(Path(tmp) / "logs3.db")
        with httpx.Client(transport=transport, base_url=InProcessTransport.BASE_URL) as http:
            project_id = http.post("/v1/project", json={"name": PROJECT}).json()["id"]
        transport.close()
        for row in rows:
            row["project_id"] = project_id
        for start in range(0, len(rows), 1000):
            body = json.dumps({"rows": rows[start : start + 1000], "api_version": 2}).encode()
            logs3.append(("/logs3", body, {"content-type": "application/json"}))
        logs3_seconds = _timed(Path(tmp) / "logs3.db", logs3)
        for name in ("otlp.db", "logs3.db"):
            transport = InProcessTransport(Path(tmp) / name)
            pid = transport.store.find_project(PROJECT)["id"]
            stored = transport.store.count_rows("project", pid)
            transport.close()
            assert stored == len(spans), f"{name}: {stored} rows stored, {len(spans)} sent"
    otlp_rate, logs3_rate = len(spans) / otlp_seconds, len(spans) / logs3_seconds
    print(f"{len(spans):,} spans in 5-span traces, in-process plane; OTLP protobuf{' + gzip' if args.gzip else ''} "
          f"in {len(otlp)} requests of {args.batch}, /logs3 in {len(logs3)} requests of 1000")
    print(f"  /otel/v1/traces: {otlp_seconds:7.2f} s  {otlp_rate:10,.0f} spans/s")
    print(f"  /logs3:          {logs3_seconds:7.2f} s  {logs3_rate:10,.0f} spans/s")
    print(f"  ratio OTLP / logs3: {otlp_rate / logs3_rate:.2f}x")


if __name__ == "__main__":
    main()
