"""Reading upload files and mapping their records to dataset rows (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines_repo.datasets.errors import DatasetFileError, MappingError
from pipelines_repo.datasets.ids import content_digest, input_id
from pipelines_repo.datasets.mapping import ColumnMapping, RecordMapper
from pipelines_repo.datasets.readers import read_records


def _rows(path: Path, mapping: ColumnMapping | None = None, fmt: str = "auto") -> list[dict]:
    mapper = RecordMapper(mapping or ColumnMapping())
    rows = [mapper.map(record) for record in read_records(path, fmt)]
    mapper.check_columns_seen(str(path))
    return rows


def test_csv_quoted_commas_newlines_utf8_and_json_cells(tmp_path: Path) -> None:
    path = tmp_path / "golden.csv"
    path.write_text(
        'question,expected,metadata,tags\n'
        '"Hello, world","line one\nline two","{""lang"": ""en""}","a, b"\n'
        'Grüße 日本,"[1, 2]",,"[""x""]"\n',
        encoding="utf-8",
    )
    rows = _rows(path)
    assert rows[0] == {"input": "Hello, world", "expected": "line one\nline two", "metadata": {"lang": "en"}, "tags": ["a", "b"]}
    assert rows[1] == {"input": "Grüße 日本", "expected": [1, 2], "tags": ["x"]}


def test_several_columns_make_an_object_and_dotted_headers_nest(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("question,context,expected.answer,expected.source,metadata.team\nq1,c1,a1,kb,support\n")
    (row,) = _rows(path)
    assert row == {
        "input": {"question": "q1", "context": "c1"},
        "expected": {"answer": "a1", "source": "kb"},
        "metadata": {"team": "support"},
    }


def test_flags_map_columns_with_parse_rules_and_constant_metadata(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("q,a,score,ok,notes,label\nq1,a1,0.5,yes,drop me,urgent\n")
    spec = ColumnMapping.parse_mapping({
        "columns": {"score": {"to": "metadata", "parse": "number"}, "ok": {"to": "metadata.reviewed", "parse": "bool"}},
        "metadata": {"source": "golden-v2"},
    })
    spec = ColumnMapping.from_options(base=spec, input=["q"], expected=["a"], ignore=["notes"], tags=["label"])
    (row,) = _rows(path, spec)
    assert row == {"input": "q1", "expected": "a1", "tags": ["urgent"],
                   "metadata": {"source": "golden-v2", "score": 0.5, "reviewed": True}}


def test_braintrust_fields_are_ignored_so_an_export_uploads_again_unchanged(tmp_path: Path) -> None:
    exported = {"id": "r1", "input": {"q": 1}, "expected": "x", "metadata": {"m": 1}, "tags": ["t"],
                "origin": {"object_type": "project_logs", "object_id": "p", "id": "s"},
                "_xact_id": "1000192656880881099", "created": "2026-01-01T00:00:00Z", "dataset_id": "d",
                "project_id": "p", "span_id": "s", "root_span_id": "s", "_pagination_key": "p1", "is_root": True}
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(exported) + "\n")
    (row,) = _rows(path)
    assert row == {k: exported[k] for k in ("id", "input", "expected", "metadata", "tags", "origin")}


def test_json_array_streams_and_rows_object_and_parquet_read_the_same(tmp_path: Path) -> None:
    records = [{"id": f"r{i}", "input": {"q": i}, "expected": i * 2} for i in range(2500)]
    (tmp_path / "a.json").write_text(json.dumps(records, indent=1))
    (tmp_path / "b.json").write_text(json.dumps({"rows": records}))
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "input.q": r["input"]["q"], "expected": r["expected"]} for r in records]),
                   tmp_path / "c.parquet")
    expected = [dict(r) for r in records]
    assert _rows(tmp_path / "a.json") == expected
    assert _rows(tmp_path / "b.json") == expected
    assert _rows(tmp_path / "c.parquet") == expected


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.csv", 'a,b\n1,2\n"open,3\n', "line 3"),
        ("short.csv", "a,b\n1,2\n3\n", "line 3"),
        ("bad.jsonl", '{"input": 1}\n{"input": \n', "line 2"),
        ("bad.json", '[{"input": 1}, {"input": }]', "item 2"),
        ("scalar.jsonl", '{"input": 1}\n7\n', "line 2"),
    ],
)
def test_malformed_files_name_the_place(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DatasetFileError) as info:
        _rows(path)
    assert f"{path}: {where}" in str(info.value)
    assert "Fix:" in str(info.value)


def test_unknown_column_in_the_mapping_is_named(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("question,answer\nq,a\n")
    with pytest.raises(MappingError) as info:
        _rows(path, ColumnMapping.from_options(expected=["answr"]))
    assert "'answr'" in str(info.value) and "answer, question" in str(info.value)


def test_bad_cell_for_a_parse_rule_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("q,score\nq1,1\nq2,lots\n")
    spec = ColumnMapping.parse_mapping({"columns": {"score": {"to": "metadata", "parse": "number"}}})
    with pytest.raises(MappingError) as info:
        _rows(path, spec)
    assert "line 3, column 'score'" in str(info.value)


def test_input_derived_ids_ignore_expected_and_digests_ignore_tag_order() -> None:
    assert input_id({"input": {"q": 1}, "expected": "a"}) == input_id({"input": {"q": 1}, "expected": "b"})
    assert input_id({"input": {"q": 1}}) != input_id({"input": {"q": 2}})
    assert content_digest({"input": 1, "tags": ["a", "b"]}) == content_digest({"input": 1, "tags": ["b", "a"], "metadata": {}})
    assert content_digest({"input": 1, "expected": "a"}) != content_digest({"input": 1, "expected": "b"})
