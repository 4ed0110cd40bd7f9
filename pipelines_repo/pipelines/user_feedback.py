"""Answers users rated highly become golden examples, refreshed nightly.

Uses this project's `DatasetPipeline`: Braintrust's signature plus orchestration options
(partitions, schedule hour, late-data lookback, error policy).
"""

from pipelines_repo import DatasetPipeline


def rated_answer_to_golden(id, input, output, metadata):
    if not output:
        return None  # nothing to learn from an empty answer
    return {
        "input": input,
        "expected": output,
        "metadata": {"user_id": metadata.get("user_id"), "source_span": id},
        "tags": ["user-rated"],
    }


DatasetPipeline(
    name="user-feedback-golden",
    source={"project_name": "Customer Support", "filter": "scores.user_rating > 0.8", "scope": "span"},
    transform=rated_answer_to_golden,
    target={"project_name": "Customer Support", "dataset_name": "Golden answers", "metadata": {"owner": "support-ml"}},
    partitions="daily",
    schedule_hour=3,
    lookback_days=3,
    on_error="skip",
    max_error_rate=0.02,
)
