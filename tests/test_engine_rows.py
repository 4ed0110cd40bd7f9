"""Row normalization (bt's runner) and push-time row validation (bt's prepare_records)."""

from __future__ import annotations

import uuid

import pytest

from pipelines_repo.engine.rows import (
    NOT_OBJECT_ROW,
    DuplicateRowIdError,
    RowPreparer,
    RowValidationError,
    TransformRowError,
    iter_batches,
    normalize_result,
    prepare_rows,
    ref_fallback_id,
    row_json_bytes,
    validate_row,
)

ORIGIN = {
    "_xact_id": "1000",
    "created": "2025-01-01T00:00:00.000000Z",
    "id": "src",
    "object_id": "proj",
    "object_type": "project_logs",
}
SPAN_REF = {"id": "src", "origin": ORIGIN, "root_span_id": "root"}
TRACE_REF = {"origin": {**ORIGIN, "id": "root-row"}, "root_span_id": "root"}


def normalize(result, ref=SPAN_REF):
    return normalize_result(result, fallback_id=ref_fallback_id(ref), origin=ref.get("origin"))


# -- normalization ---------------------------------------------------------------------------------


def test_none_list_and_single_results():
    assert normalize(None) == []
    assert normalize([]) == []
    assert len(normalize({"input": 1})) == 1
    assert len(normalize([{"input": 1}, {"input": 2}])) == 2


def test_fallback_ids_single_several_and_trace_scope():
    assert normalize({"input": 1})[0]["id"] == "src"
    assert [r["id"] for r in normalize([{"input": 1}, {"id": "mine"}, {"input": 3}])] == ["src:0", "mine", "src:2"]
    assert normalize({"input": 1}, TRACE_REF)[0]["id"] == "root"
    assert [r["id"] for r in normalize([{}, {}], TRACE_REF)] == ["root:0", "root:1"]


def test_explicit_none_id_stays_none():
    (row,) = normalize({"id": None, "input": 1})
    assert "id" in row and row["id"] is None


def test_origin_is_always_replaced_by_the_ref_origin():
    (row,) = normalize({"input": 1, "origin": {"id": "forged"}})
    assert row["origin"] == ORIGIN
    (row,) = normalize({"input": 1, "origin": {"id": "forged"}}, {"root_span_id": "r"})
    assert "origin" not in row  # removed even when the ref has none


@pytest.mark.parametrize("result", ["text", 3, ({"input": 1},), [{"input": 1}, "x"]])
def test_non_object_rows_fail_like_bt(result):
    with pytest.raises(TransformRowError) as info:
        normalize(result)
    assert str(info.value) == NOT_OBJECT_ROW == "Dataset pipeline transform must return an object row."


def test_generator_is_not_expanded():
    with pytest.raises(TransformRowError):
        normalize(x for x in [{"input": 1}])


def test_extra_keys_pass_normalization():
    (row,) = normalize({"input": 1, "output": 2})
    assert row["output"] == 2


# -- validation ------------------------------------------------------------------------------------


def test_valid_row_has_no_errors():
    assert validate_row({"id": "a", "input": 1, "expected": {"x": [1]}, "metadata": {"k": 1}, "tags": ["t"], "origin": ORIGIN}) == []
    assert validate_row({"id": None, "metadata": None, "tags": None}) == []


@pytest.mark.parametrize(
    ("row", "needles"),
    [
        ({"id": "a", "output": 1}, ["'output'", "expected"]),
        ({"id": "a", "span_attributes": {}}, ["'span_attributes'", "metadata"]),
        ({"id": "a", "dataset_id": "d"}, ["'dataset_id'", "system field"]),
        ({"id": "a", "created": "now"}, ["'created'", "system field"]),
        ({"id": "a", "_is_merge": True}, ["'_is_merge'", "system field"]),
        ({"id": "a", "foo": 1}, ["unknown field 'foo'", "metadata"]),
        ({"id": "a", "metadata": "bad"}, ["'metadata' must be an object"]),
        ({"id": "a", "tags": ["smoke", 1]}, ["'tags' must be a list of strings", "item 1"]),
        ({"id": "a", "tags": "smoke"}, ["'tags' must be a list of strings"]),
        ({"id": 123}, ["'id' must be a string"]),
        ({"id": ""}, ["'id' must not be empty"]),
        ({"id": "a", "origin": "x"}, ["'origin' must be an object"]),
        ({"id": "a", "input": float("nan")}, ["not JSON-serializable"]),
        ({"id": "a", "input": object()}, ["not JSON-serializable"]),
        ("row", ["must be a JSON object"]),
    ],
)
def test_invalid_rows_name_the_field(row, needles):
    errors = validate_row(row)
    assert errors
    text = "; ".join(errors)
    for needle in needles:
        assert needle in text


def test_prepare_rows_shape_and_error():
    rows = list(prepare_rows([{"id": "a", "input": 1, "expected": None, "tags": ["t"], "origin": ORIGIN}]))
    assert rows == [{"id": "a", "input": 1, "tags": ["t"], "origin": ORIGIN}]
    with pytest.raises(RowValidationError) as info:
        list(prepare_rows([{"id": "a"}, {"id": "b", "output": 1}]))
    assert info.value.index == 1
    assert "invalid dataset rows" in str(info.value) and "row 2 (id 'b')" in str(info.value)


def test_duplicate_ids_rejected_naming_the_id():
    with pytest.raises(DuplicateRowIdError) as info:
        list(prepare_rows([{"id": "dup"}, {"id": "x"}, {"id": "dup"}]))
    assert "duplicate dataset row id 'dup'" in str(info.value) and "row 1" in str(info.value)


def test_missing_ids_are_deterministic_uuids():
    rows = [
        {"id": None, "input": 1, "origin": ORIGIN},
        {"id": None, "input": 2, "origin": ORIGIN},
        {"input": 3},
        {"input": 3},
    ]
    first = [r["id"] for r in prepare_rows(rows)]
    second = [r["id"] for r in prepare_rows(rows)]
    assert first == second
    assert len(set(first)) == 4
    for value in first:
        uuid.UUID(value)


def test_preparer_resume_rebuilds_state():
    rows = [{"id": "a"}, {"input": 1}, {"id": "a"}]
    preparer = RowPreparer()
    preparer.prepare(rows[0])
    preparer.prepare(rows[1])
    with pytest.raises(DuplicateRowIdError):
        preparer.prepare(rows[2])


def test_row_json_bytes_and_batches():
    row = {"b": "é", "a": 1}
    assert row_json_bytes(row) == '{"a":1,"b":"é"}'.encode()
    rows = [{"id": str(i), "input": "x" * 10} for i in range(10)]
    assert [len(b) for b in iter_batches(rows, max_rows=4, max_bytes=10_000)] == [4, 4, 2]
    size = len(row_json_bytes(rows[0])) + 1
    assert [len(b) for b in iter_batches(rows, max_rows=100, max_bytes=size * 3)] == [3, 3, 3, 1]
    assert [len(b) for b in iter_batches(rows[:2], max_rows=100, max_bytes=1)] == [1, 1]


@pytest.mark.parametrize("row", [
    {"id": "a", "input": {"q": "héllo ✓", "n": [1, 2.5, None]}, "expected": "x", "metadata": {"b": 1, "a": {"z": 0}},
     "tags": ["t"], "origin": {"id": "s", "object_type": "project_logs"}},
    {"id": "b", "input": 1, "expected": None},  # the push drops the None field: encoded afresh
    {"input": 2},  # the push fills in an id: encoded afresh
])
def test_a_checked_row_is_sent_as_exactly_the_json_a_fresh_encode_gives(row):
    from pipelines_repo.engine.push import _known_json
    from pipelines_repo.engine.rows import EncodedRow, RowPreparer, check_row, row_json_bytes

    problems, text = check_row(row)
    assert problems == [] and text is not None
    checked = EncodedRow(row, text)
    assert checked == row
    out = RowPreparer(prevalidated=True).prepare(checked, 0)
    out["dataset_id"] = "ds-1"
    known = _known_json(checked, out)
    reusable = all(v is not None for v in row.values()) and "id" in row
    assert (known is not None) == reusable
    if known is not None:
        assert known == row_json_bytes(out)


def test_check_row_gives_no_text_for_a_row_it_rejects():
    from pipelines_repo.engine.rows import check_row

    problems, text = check_row({"id": "a", "input": float("nan")})
    assert problems and "JSON-serializable" in problems[0] and text is None
    problems, text = check_row({"id": "a", "output": 1})
    assert problems and text is None
