"""The support team's FAQ, kept in a CSV next to this file, becomes a golden dataset.

Uses this project's `DatasetFile`: edit `data/support_faq.csv` and the `support_faq_file_changed`
sensor uploads it (only new and changed rows are written; ids come from `case_id`). The schemas
are enforced: a row without a question or an answer is quarantined and the upload fails.
"""

from pipelines_repo import DatasetFile

DatasetFile(
    name="support-faq",
    path="data/support_faq.csv",
    target={"project_name": "Customer Support", "dataset_name": "Support FAQ"},
    mapping={
        "columns": {
            "question": "input.question",
            "answer": "expected",
            "topic": "metadata",
            "difficulty": "metadata",
            "labels": "tags",
        },
        "id_field": "case_id",
        "metadata": {"source": "support-faq.csv"},
    },
    schema={
        "input": {
            "type": "object",
            "properties": {"question": {"type": "string", "minLength": 5}},
            "required": ["question"],
            "enforce": True,
        },
        "expected": {"type": "string", "minLength": 1, "enforce": True},
    },
)
