"""Requests from the OpenTelemetry-instrumented app become a review queue, keeping what the model said.

Trace scope over the traces the app exports through OTLP (`metadata.source = 'otel'`). The row's
`expected` is left for a reviewer to fill in; `run_output="llm"` keeps the output of the trace's
last LLM span in `metadata.run_output` (with its `span_id` and `root_span_id`), so the reviewer
sees the runtime answer beside the question.
"""

from pipelines_repo import DatasetPipeline


async def request_to_review_item(trace):
    roots = await trace.get_spans(span_type=["task"])
    if not roots:
        return None
    return {"input": roots[0].input, "tags": ["needs-review"]}


DatasetPipeline(
    name="otel-review-queue",
    source={"project_name": "Customer Support", "filter": "metadata.source = 'otel'", "scope": "trace"},
    transform=request_to_review_item,
    target={"project_name": "Customer Support", "dataset_name": "Review queue"},
    run_output="llm",
    schedule_hour=4,
)
