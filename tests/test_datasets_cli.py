"""`bt-dagster datasets ...` end to end on a served local plane, rows read back with the official SDK.

The served plane plays Braintrust (BRAINTRUST_API_KEY + BRAINTRUST_APP_URL), so the CLI and the SDK
reach it exactly as they would reach Braintrust. Expected rows are computed here from the files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import braintrust
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ServedPlane, use_as_braintrust
from pipelines_repo.cli.main import main as cli

PROJECT = "Datasets"


@pytest.fixture(scope="module")
def plane(served_plane: ServedPlane) -> ServedPlane:
    return served_plane


@pytest.fixture(autouse=True)
def as_braintrust(plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI's environment: the served plane as 'real' Braintrust; artifacts under tmp_path."""
    return use_as_braintrust(plane, monkeypatch, tmp_path)


def bt(capsys: pytest.CaptureFixture, *args: str, code: int = 0) -> dict:
    capsys.readouterr()
    got = cli(["datasets", *args, "--project", PROJECT, "--json"])
    out = capsys.readouterr()
    assert got == code, out.err
    return json.loads(out.out.strip().splitlines()[-1]) if out.out.strip() else {"stderr": out.err}


def bt_error(capsys: pytest.CaptureFixture, *args: str) -> str:
    capsys.readouterr()
    assert cli(["datasets", *args, "--project", PROJECT]) == 1
    return capsys.readouterr().err


def sdk_rows(plane: ServedPlane, name: str, version: str | None = None) -> dict[str, dict]:
    dataset = braintrust.init_dataset(project=PROJECT, name=name, app_url=plane.url, api_key=plane.api_key, version=version)
    return {r["id"]: {k: r[k] for k in ("input", "expected", "metadata", "tags") if r.get(k) not in (None, {}, [])} for r in dataset}


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOLDEN = [
    ["c1", "Refund, please?", "Yes, within 30 days", "billing", '{"tier": "pro"}', "refund, urgent"],
    ["c2", "Where is\nmy order?", "Track it here", "shipping", "", '["orders"]'],
    ["c3", "Grüße — 日本語?", "ja", "i18n", '{"tier": "free"}', ""],
]


def golden_csv(tmp_path: Path, rows=GOLDEN, name: str = "golden.csv") -> Path:
    return write_csv(tmp_path / name, ["id", "question", "answer", "team", "extra", "labels"], rows)


def expected_golden(rows=GOLDEN) -> dict[str, dict]:
    out = {}
    for case_id, question, answer, team, extra, labels in rows:
        row = {"input": question, "expected": answer, "metadata": {"team": team, **({"extra": json.loads(extra)} if extra else {})}}
        tags = json.loads(labels) if labels.startswith("[") else [t.strip() for t in labels.split(",") if t.strip()]
        if tags:
            row["tags"] = tags
        out[case_id] = row
    return out


MAP = ["--input", "question", "--expected", "answer", "--metadata", "team", "extra", "--tags", "labels"]


def test_csv_upload_maps_every_category_and_reads_back_with_the_sdk(plane, capsys, tmp_path) -> None:
    summary = bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "golden", *MAP)
    assert (summary["rows"], summary["added"], summary["updated"], summary["unchanged"]) == (3, 3, 0, 0)
    assert summary["dataset_version"]
    assert sdk_rows(plane, "golden") == expected_golden()


def test_second_upload_of_the_same_file_creates_no_version(plane, capsys, tmp_path) -> None:
    path = golden_csv(tmp_path)
    first = bt(capsys, "upload", str(path), "--dataset", "again", *MAP)
    second = bt(capsys, "upload", str(path), "--dataset", "again", *MAP)
    assert (second["added"], second["updated"], second["unchanged"]) == (0, 0, 3)
    assert second["dataset_version"] == first["dataset_version"]


def test_editing_expected_updates_the_same_rows_even_without_ids(plane, capsys, tmp_path) -> None:
    rows = [["Q1", "A1"], ["Q2", "A2"]]
    path = write_csv(tmp_path / "noid.csv", ["question", "expected"], rows)
    bt(capsys, "upload", str(path), "--dataset", "noid")
    before = sdk_rows(plane, "noid")
    write_csv(path, ["question", "expected"], [["Q1", "A1 (fixed)"], ["Q2", "A2"]])
    summary = bt(capsys, "upload", str(path), "--dataset", "noid")
    after = sdk_rows(plane, "noid")
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 1, 1)
    assert set(after) == set(before) and len(after) == 2
    assert sorted(r["expected"] for r in after.values()) == ["A1 (fixed)", "A2"]


def test_duplicate_ids_keep_the_last_row_or_fail_on_request(plane, capsys, tmp_path) -> None:
    path = tmp_path / "dups.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "input": "first"}, {"id": "b", "input": "b"}, {"id": "a", "input": "last"}]) + "\n")
    summary = bt(capsys, "upload", str(path), "--dataset", "dups")
    assert (summary["rows"], summary["duplicates"]) == (2, 1)
    assert sdk_rows(plane, "dups") == {"a": {"input": "last"}, "b": {"input": "b"}}
    err = bt_error(capsys, "upload", str(path), "--dataset", "dups-strict", "--on-duplicate", "error")
    assert "line 3" in err and "'a'" in err and "line 1" in err


def test_json_jsonl_and_parquet_upload_the_same_rows(plane, capsys, tmp_path) -> None:
    records = [{"id": f"r{i}", "input": {"q": i, "ctx": "x" * i}, "expected": {"a": i * 2}, "metadata": {"i": i}, "tags": ["t"]}
               for i in range(25)]
    (tmp_path / "rows.json").write_text(json.dumps({"rows": records}))
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "rows.parquet")
    expected = {r["id"]: {k: r[k] for k in ("input", "expected", "metadata", "tags")} for r in records}
    for name in ("rows.json", "rows.jsonl", "rows.parquet"):
        bt(capsys, "upload", str(tmp_path / name), "--dataset", f"fmt-{name}")
        assert sdk_rows(plane, f"fmt-{name}") == expected, name


def test_mirror_deletes_rows_missing_from_the_file_and_needs_yes(plane, capsys, tmp_path) -> None:
    bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "mirror", *MAP)
    smaller = golden_csv(tmp_path, GOLDEN[:1], "one.csv")
    err = bt_error(capsys, "upload", str(smaller), "--dataset", "mirror", "--mode", "mirror", *MAP)
    assert "2 dataset row(s)" in err and "--yes" in err
    assert len(sdk_rows(plane, "mirror")) == 3
    summary = bt(capsys, "upload", str(smaller), "--dataset", "mirror", "--mode", "mirror", "--yes", *MAP)
    assert summary["deleted"] == 2
    assert set(sdk_rows(plane, "mirror")) == {"c1"}


def test_dry_run_prints_mapping_counts_and_samples_and_writes_nothing(plane, capsys, tmp_path) -> None:
    summary = bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "dry", "--dry-run", *MAP)
    assert summary["mapping"]["question"] == "input" and summary["mapping"]["team"] == "metadata.team"
    assert summary["added"] == 3 and len(summary["sample"]) == 3
    assert bt(capsys, "list")["datasets"] == [d for d in bt(capsys, "list")["datasets"] if d["name"] != "dry"]


@pytest.mark.parametrize(
    ("name", "text", "flags", "expect"),
    [
        ("quote.csv", 'question,answer\n"ok",fine\n"broken,no close\n', [], ["line 3"]),
        ("bad.jsonl", '{"input": 1}\n{"input": oops}\n', [], ["line 2", "invalid JSON"]),
        ("unknown.csv", "question,answer\nq,a\n", ["--expected", "answr"], ["'answr'", "answer, question"]),
    ],
)
def test_malformed_file_fails_names_the_place_and_writes_nothing(plane, capsys, tmp_path, name, text, flags, expect) -> None:
    path = tmp_path / name
    path.write_text(text)
    err = bt_error(capsys, "upload", str(path), "--dataset", f"bad-{name}", *flags)
    for fragment in expect:
        assert fragment in err
    assert "Fix:" in err
    assert f"bad-{name}" not in [d["name"] for d in bt(capsys, "list")["datasets"]]


def test_bt_commands_create_view_update_delete(plane, capsys, tmp_path) -> None:
    path = golden_csv(tmp_path)
    created = bt(capsys, "create", "bt-style", "--file", str(path), *MAP)
    assert created["added"] == 3
    assert "already exists" in bt_error(capsys, "create", "bt-style")
    assert len(bt(capsys, "view", "bt-style")["rows"]) == 3
    edited = [list(GOLDEN[0][:2]) + ["Yes, within 60 days"] + list(GOLDEN[0][3:])]
    updated = bt(capsys, "update", "bt-style", "--file", str(golden_csv(tmp_path, edited, "edit.csv")), *MAP)
    assert (updated["updated"], updated["unchanged"]) == (1, 0)
    assert sdk_rows(plane, "bt-style")["c1"]["expected"] == "Yes, within 60 days"
    assert "--force" in bt_error(capsys, "delete", "bt-style")
    bt(capsys, "delete", "bt-style", "--force")
    assert "bt-style" not in [d["name"] for d in bt(capsys, "list")["datasets"]]


def test_snapshots_create_list_restore_with_preview(plane, capsys, tmp_path) -> None:
    bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "snap", *MAP)
    snap = bt(capsys, "snapshots", "create", "snap", "--name", "v1")["snapshot"]
    assert [s["name"] for s in bt(capsys, "snapshots", "list", "snap")["snapshots"]] == ["v1"]
    bt(capsys, "upload", str(golden_csv(tmp_path, GOLDEN[:1], "one.csv")), "--dataset", "snap", "--mode", "mirror", "--yes", *MAP)
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "new", "input": "n"}) + "\n")
    bt(capsys, "upload", str(extra), "--dataset", "snap")
    preview = bt(capsys, "snapshots", "restore", "snap", "--name", "v1")
    assert preview["preview"] == {"rows_to_restore": 2, "rows_to_delete": 1}
    assert set(sdk_rows(plane, "snap")) == {"c1", "new"}  # a preview changes nothing
    restored = bt(capsys, "snapshots", "restore", "snap", "--name", "v1", "--force")
    assert restored["restored"]["rows_restored"] == 2 and restored["restored"]["rows_deleted"] == 1
    assert sdk_rows(plane, "snap") == expected_golden()
    assert sdk_rows(plane, "snap", version=snap["xact_id"]) == expected_golden()


def test_diff_reports_exactly_the_ids_and_fields_changed_through_the_sdk(plane, capsys, tmp_path) -> None:
    first = bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "diffed", *MAP)["dataset_version"]
    dataset = braintrust.init_dataset(project=PROJECT, name="diffed", app_url=plane.url, api_key=plane.api_key)
    dataset.update(id="c1", expected="No refunds", metadata={"team": "billing", "extra": {"tier": "pro"}, "reviewed": True})
    dataset.delete("c2")
    dataset.insert(id="c4", input="new question", expected="new answer")
    dataset.flush()
    diff = bt(capsys, "diff", "diffed", "--from", first)
    assert diff["from"] == first
    assert diff["added"] == ["c4"] and diff["removed"] == ["c2"]
    assert [m["id"] for m in diff["modified"]] == ["c1"]
    assert sorted(diff["modified"][0]["patch"], key=lambda op: op["path"]) == [
        {"op": "replace", "path": "/expected", "value": "No refunds"},
        {"op": "add", "path": "/metadata/reviewed", "value": True},
    ]
    capsys.readouterr()
    assert cli(["datasets", "diff", "diffed", "--project", PROJECT, "--from", first, "--exit-code", "--format", "md"]) == 1
    assert "| modified | `c1` | `/expected` | replace |" in capsys.readouterr().out
    versions = bt(capsys, "versions", "diffed")["versions"]
    assert versions[0]["added"] == 3 and versions[0]["xact_id"] == first
    assert sum(v["deleted"] for v in versions) == 1


def test_copy_keeps_ids_and_points_origin_at_the_source(plane, capsys, tmp_path) -> None:
    bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "copy-src", *MAP)
    summary = bt(capsys, "copy", "copy-src", "copy-dst", "--filter", "metadata.team = 'billing'")
    assert summary["added"] == 1
    source = braintrust.init_dataset(project=PROJECT, name="copy-src", app_url=plane.url, api_key=plane.api_key)
    src = {r["id"]: r for r in source}
    (row,) = list(braintrust.init_dataset(project=PROJECT, name="copy-dst", app_url=plane.url, api_key=plane.api_key))
    assert row["id"] == "c1" and row["expected"] == src["c1"]["expected"]
    assert row["origin"]["object_type"] == "dataset" and row["origin"]["object_id"] == source.id
    assert row["origin"]["id"] == "c1" and row["origin"]["_xact_id"] == src["c1"]["_xact_id"]
    again = bt(capsys, "copy", "copy-src", "copy-dst", "--filter", "metadata.team = 'billing'")
    assert (again["added"], again["unchanged"]) == (0, 1)


def test_rows_delete_by_ids_and_by_filter_with_dry_run(plane, capsys, tmp_path) -> None:
    bt(capsys, "upload", str(golden_csv(tmp_path)), "--dataset", "rowdel", *MAP)
    dry = bt(capsys, "rows", "delete", "rowdel", "--filter", "metadata.team = 'i18n'", "--dry-run")
    assert dry["ids"] == ["c3"] and dry["deleted"] == 0
    assert len(sdk_rows(plane, "rowdel")) == 3
    bt(capsys, "rows", "delete", "rowdel", "--ids", "c1", "missing")
    bt(capsys, "rows", "delete", "rowdel", "--filter", "metadata.team = 'i18n'")
    assert set(sdk_rows(plane, "rowdel")) == {"c2"}


def test_schemas_infer_enforce_quarantine_and_check(plane, capsys, tmp_path) -> None:
    rows = [[f"c{i}", f"question {i}", f"answer {i}", "team", "", ""] for i in range(120)]
    bt(capsys, "upload", str(golden_csv(tmp_path, rows, "many.csv")), "--dataset", "schemed", *MAP)
    inferred = bt(capsys, "schema", "infer", "schemed", "--sample", "100", "--write", "--enforce")["schemas"]
    assert inferred["input"]["type"] == "string" and inferred["input"]["enforce"] is True
    assert bt(capsys, "schema", "show", "schemed")["schemas"]["metadata"]["properties"]["team"]["type"] == "string"
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "ok", "input": "fine", "metadata": {"team": "t"}},
        {"id": "bad1", "input": {"not": "a string"}, "metadata": {"team": "t"}},
        {"id": "bad2", "input": 7, "metadata": {"team": 5}},
    ]))
    err = bt_error(capsys, "upload", str(bad), "--dataset", "schemed")
    assert "2 row(s) do not conform" in err and "bad.jsonl.quarantine.jsonl" in err
    quarantined = [json.loads(line) for line in (tmp_path / "bad.jsonl.quarantine.jsonl").read_text().splitlines()]
    assert [q["id"] for q in quarantined] == ["bad1", "bad2"]
    assert {(e["field"], e["path"], e["keyword"]) for e in quarantined[1]["errors"]} == {("input", "$", "type"), ("metadata", "$.team", "type")}
    assert "ok" not in sdk_rows(plane, "schemed")
    summary = bt(capsys, "upload", str(bad), "--dataset", "schemed", "--max-invalid", "2")
    assert (summary["added"], summary["quarantined"]) == (1, 2)
    assert "ok" in sdk_rows(plane, "schemed") and "bad1" not in sdk_rows(plane, "schemed")
    dataset = braintrust.init_dataset(project=PROJECT, name="schemed", app_url=plane.url, api_key=plane.api_key)
    dataset.insert(id="sdk-bad", input=["a list"], metadata={"team": 1})  # Braintrust's API does not enforce
    dataset.flush()
    check = bt(capsys, "schema", "check", "schemed", code=1)
    assert check["invalid_rows"] == 1
    assert {(e["id"], e["field"], e["path"]) for e in check["errors"]} == {("sdk-bad", "input", "$"), ("sdk-bad", "metadata", "$.team")}
