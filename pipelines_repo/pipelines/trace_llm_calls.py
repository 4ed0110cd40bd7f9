"""Whole traces with a high correctness score become multi-turn LLM examples.

Trace scope: the transform receives the trace only, and reads its LLM spans through the
Braintrust SDK's `Trace` protocol (`get_spans(span_type=["llm"])`).
"""

from braintrust import DatasetPipeline


async def llm_calls_to_example(trace):
    llm_spans = await trace.get_spans(span_type=["llm"])
    if not llm_spans:
        return None
    llm_spans = sorted(llm_spans, key=lambda span: (span.metrics or {}).get("start", 0))
    final = llm_spans[-1]
    return {
        "input": {"messages": final.input, "calls": len(llm_spans)},
        "expected": final.output,
        "metadata": {
            "models": sorted({(span.metadata or {}).get("model") for span in llm_spans} - {None}),
            "tokens": sum((span.metrics or {}).get("tokens", 0) for span in llm_spans),
        },
    }


DatasetPipeline(
    name="llm-call-traces",
    source={"project_name": "Customer Support", "filter": "scores.correctness >= 0.7", "scope": "trace"},
    transform=llm_calls_to_example,
    target={"project_name": "Customer Support", "dataset_name": "Correct LLM traces"},
)
