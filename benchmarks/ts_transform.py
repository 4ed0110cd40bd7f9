"""Benchmark: transform throughput of the same pipeline in Python and in TypeScript, in one run.

    python benchmarks/ts_transform.py [--spans 20000] [--concurrency 8]

The items are what the pull stage hands the transform (``TransformItem`` with the span payload
in span scope, with the trace's spans in trace scope), built in memory from the deterministic
demo logs (``generate_demo_logs``; spans with metadata), so only the transform stage is measured: argument filtering,
the call (in-process for Python, a JSONL round trip to the file's Node runner for TS), row
normalization and validation. Two pipelines, each written both ways:

  support-cases  span scope, sync: Braintrust's documented example (support_cases.py / pipeline.ts)
  llm-spans      trace scope, async: ``await trace.getSpans({spanType: ["llm"]})`` per trace (for TS a
                 callback answered by Python from the embedded spans)

Figures: rows per second (wall time of ``list(transform_items(...))``); for TS, the Node runner's
start (spawn + import of the file) is timed apart and not counted in the rate.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipelines_repo.engine import node_loader  # noqa: E402
from pipelines_repo.engine.items import TransformItem  # noqa: E402
from pipelines_repo.engine.loader import load_pipeline_file  # noqa: E402
from pipelines_repo.engine.transform import transform_items  # noqa: E402
from pipelines_repo.local.seed import generate_demo_logs  # noqa: E402

LLM_PY = """
from braintrust import DatasetPipeline

async def last_llm(trace):
    llm = await trace.get_spans(span_type=["llm"])
    return {"input": llm[-1].input, "expected": llm[-1].output} if llm else None

DatasetPipeline(name="llm-spans", source={"project_name": "Customer Support", "scope": "trace"},
                transform=last_llm, target={"dataset_name": "LLM spans"})
"""

LLM_TS = """
import { DatasetPipeline } from "braintrust";
DatasetPipeline({ name: "llm-spans", source: { projectName: "Customer Support", scope: "trace" },
  transform: async ({ trace }) => {
    const llm = await trace.getSpans({ spanType: ["llm"] });
    return llm.length ? { input: llm[llm.length - 1].input, expected: llm[llm.length - 1].output } : null;
  },
  target: { datasetName: "LLM spans" } });
"""


def items(spans: int) -> tuple[list[TransformItem], list[TransformItem]]:
    # spans with metadata (the example reads metadata.get(...); the pull's filter would pick flagged ones)
    rows: list[dict] = []
    per_day = max(1, spans // 30)
    while len(rows) < spans:
        logs = generate_demo_logs("proj", days=30, spans_per_day=per_day, seed=11)
        rows = [r for r in logs if "comment" not in r and isinstance(r.get("metadata"), dict)]
        per_day *= 2
    rows = rows[:spans]
    origin = lambda row: {"object_type": "project_logs", "object_id": "proj", "id": row["id"]}  # noqa: E731
    span_items = [TransformItem(ref={"id": r["id"], "root_span_id": r["root_span_id"], "origin": origin(r)}, span=r) for r in rows]
    by_root: dict[str, list[dict]] = {}
    for row in rows:
        by_root.setdefault(row["root_span_id"], []).append(row)
    trace_items = [
        TransformItem(ref={"root_span_id": root, "origin": origin(group[0])}, spans=group) for root, group in by_root.items()
    ]
    return span_items, trace_items


def measure(spec, work: list[TransformItem], concurrency: int) -> tuple[float, int]:
    started = time.perf_counter()
    rows = sum(1 for _ in transform_items(spec, work, max_concurrency=concurrency))
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    span_items, trace_items = items(args.spans)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "llm_spans.py").write_text(textwrap.dedent(LLM_PY))
        (folder / "llm_spans.ts").write_text(textwrap.dedent(LLM_TS))
        cases = [
            ("support-cases", REPO / "pipelines_repo" / "pipelines" / "support_cases.py", REPO / "tests" / "data" / "pipeline.ts", span_items),
            ("llm-spans", folder / "llm_spans.py", folder / "llm_spans.ts", trace_items),
        ]
        print(f"{len(span_items)} span items, {len(trace_items)} trace items, max_concurrency {args.concurrency}")
        print(f"{'pipeline':<15}{'lang':<6}{'items':>8}{'rows':>8}{'seconds':>9}{'rows/s':>10}")
        for name, py_file, ts_file, work in cases:
            for lang, path in (("py", py_file), ("ts", ts_file)):
                (spec,) = load_pipeline_file(path)
                if lang == "ts":
                    started = time.perf_counter()
                    node_loader.runner_for(spec.file, node_loader.source_digest(spec.file))
                    print(f"{'':<15}{'ts':<6} runner start {time.perf_counter() - started:.2f} s (not in the rate)")
                seconds, rows = measure(spec, work, args.concurrency)
                print(f"{name:<15}{lang:<6}{len(work):>8}{rows:>8}{seconds:>9.2f}{rows / seconds:>10.0f}")
    node_loader.shutdown_runners()


if __name__ == "__main__":
    main()
