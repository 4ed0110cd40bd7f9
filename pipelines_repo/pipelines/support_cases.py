"""Flagged support conversations become regression cases (Braintrust's documented example).

Written for Braintrust's own CLI: `bt datasets pipeline run support_cases.py` runs it unchanged.
Every span a reviewer flagged becomes a dataset row whose expected value is the answer given.
"""

from braintrust import DatasetPipeline


def flagged_span_to_case(input, output, metadata):
    return {
        "input": input,
        "expected": output,
        "metadata": {
            "model": metadata.get("model"),
            "topic": metadata.get("topic"),
            "user_id": metadata.get("user_id"),
        },
        "tags": ["flagged"],
    }


DatasetPipeline(
    name="support-cases",
    source={"project_name": "Customer Support", "filter": "metadata.flagged = true", "scope": "span"},
    transform=flagged_span_to_case,
    target={
        "project_name": "Customer Support",
        "dataset_name": "Support cases",
        "description": "Flagged support conversations, kept as regression cases",
    },
)
