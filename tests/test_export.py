"""Exports end to end: the served local plane (SDK-logged spans, a dataset uploaded with the CLI)
-> `bt-dagster export` / `bt-dagster sql` -> a real S3-compatible server (SeaweedFS) or a local
folder. Nothing in the export path is mocked."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from pathlib import Path

import braintrust
import obstore
import pyarrow.parquet as pq
import pytest

from conftest import ServedPlane, use_as_braintrust
from helpers import cli_json
from pipelines_repo.cli.main import main as cli
from pipelines_repo.export.sources import DATASET_COLUMNS, TRACE_COLUMNS
from s3_server import S3Server, export_env, s3_server  # noqa: F401 - the session fixture

PROJECT = "Export Tests"
DATASET_ROWS = [
    {"id": f"case-{i}",
     "input": {"question": f"how do I reset password {i}?", "context": ["faq", f"doc-{i}"], "user": {"tier": "pro", "n": i}},
     "expected": {"answer": f"go to settings {i}"},
     "metadata": {"run_output": f"model said {i}", "source": "golden", "extra": {"score": i / 10, "ok": i % 2 == 0}},
     "tags": ["support", f"batch-{i % 3}"]}
    for i in range(25)
]
KEEP = ("id", "input", "expected", "metadata", "tags")


@pytest.fixture(scope="module")
def seeded(served_plane: ServedPlane, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """12 traces of 3 spans logged with the SDK, and a dataset uploaded with `datasets upload`."""
    plane = served_plane
    braintrust.login(app_url=plane.url, api_key=plane.api_key, force_login=True)
    logger = braintrust.init_logger(project=PROJECT, app_url=plane.url, api_key=plane.api_key)
    traces = {}
    for i in range(12):
        with logger.start_span(name="request", type="task", input={"q": f"q{i}"}, tags=["prod"],
                               metadata={"user": f"u{i}"}) as root:
            for step in range(2):
                with root.start_span(name=f"llm{step}", type="llm", input=[{"role": "user", "content": "x"}]) as llm:
                    llm.log(output="y", scores={"quality": (i + step) / 20},
                            metrics={"prompt_tokens": 10 + step, "completion_tokens": 5, "tokens": 15 + step})
            root.log(output={"a": i}, scores={"quality": 0.5, "helpful": 1.0})
        traces[root.root_span_id] = i
    logger.flush()
    work = tmp_path_factory.mktemp("seed")
    source = work / "cases.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in DATASET_ROWS))
    mp = pytest.MonkeyPatch()
    try:
        use_as_braintrust(plane, mp, work)
        assert cli(["datasets", "upload", str(source), "--project", PROJECT, "--dataset", "cases", "--json"]) == 0
    finally:
        mp.undo()
    return {"project_id": logger.project.id, "traces": traces}


@pytest.fixture
def env(served_plane: ServedPlane, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: F811
    return export_env(served_plane, s3_server, monkeypatch, tmp_path)


def run(capsys, *args: str) -> dict:
    return cli_json(capsys, *args)


def fail(capsys, *args: str) -> str:
    capsys.readouterr()
    assert cli(list(args)) == 1
    out = capsys.readouterr()
    return out.out + out.err


def dataset_rows(capsys, name: str) -> dict[str, dict]:
    rows = run(capsys, "datasets", "view", name, "--project", PROJECT, "--all-rows")["rows"]
    return {r["id"]: {k: r.get(k) for k in KEEP} for r in rows}


def fetch(s3: S3Server, url: str, local: Path) -> Path:  # noqa: F811
    bucket, _, key = url.removeprefix("s3://").partition("/")
    local.write_bytes(bytes(obstore.get(s3.store(bucket), key).bytes()))
    return local


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "parquet"])
@pytest.mark.parametrize("where", ["s3", "local"])
def test_dataset_round_trip(seeded, env, s3_server, capsys, fmt, where):  # noqa: F811
    out = f"s3://{s3_server.make_bucket()}/exports/cases.{fmt}" if where == "s3" else str(env / "out" / f"cases.{fmt}")
    result = run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", out)
    assert result["rows"] == len(DATASET_ROWS) and result["files"] == 1 and result["paths"] == [out]
    local = fetch(s3_server, out, env / f"got.{fmt}") if where == "s3" else Path(out)
    assert local.stat().st_size == result["bytes"]
    extra: list[str] = []  # every format uploads again as it is (Parquet names its JSON-text columns)
    target = f"copy-{fmt}-{where}"
    run(capsys, "datasets", "upload", str(local), "--project", PROJECT, "--dataset", target, *extra)
    assert dataset_rows(capsys, target) == dataset_rows(capsys, "cases") == {r["id"]: {k: r.get(k) for k in KEEP} for r in DATASET_ROWS}


def test_jsonl_gzip_and_split_files(seeded, env, s3_server, capsys):  # noqa: F811
    bucket = s3_server.make_bucket()
    result = run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--gzip",
                 "--rows-per-file", "10", "--out", f"s3://{bucket}/parts/")
    assert result["files"] == 3 and result["rows"] == 25
    assert result["paths"][0] == f"s3://{bucket}/parts/dataset-00000.jsonl.gz"
    lines = [json.loads(line) for p in result["paths"] for line in
             gzip.decompress(bytes(obstore.get(s3_server.store(bucket), p.split("/", 3)[3]).bytes())).splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(r["id"] for r in DATASET_ROWS)
    assert all(r["tags"] for r in lines)


def test_csv_columns(seeded, env, capsys):
    run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", str(env / "c.csv"))
    with open(env / "c.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames
        rows = list(reader)
    fixed_scalars = ["id", "_xact_id", "created", "_pagination_key", "project_id", "dataset_id", "root_span_id",
                     "span_id", "is_root"]
    assert header[:9] == fixed_scalars
    # dotted columns in order of appearance (the plane returns object keys sorted)
    assert ["input.context", "input.question", "input.user", "expected.answer", "metadata.extra",
            "metadata.run_output", "metadata.source", "tags"] == [h for h in header if h not in fixed_scalars + ["_extra", "origin", "comments"]]
    assert header[-1] == "_extra"
    first = next(r for r in rows if r["id"] == "case-3")
    assert first["input.question"] == "how do I reset password 3?"
    assert json.loads(first["input.context"]) == ["faq", "doc-3"] and json.loads(first["input.user"]) == {"tier": "pro", "n": 3}
    assert first["metadata.run_output"] == "model said 3" and json.loads(first["tags"]) == ["support", "batch-0"]


def test_parquet_schema(seeded, env, capsys):
    run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", str(env / "d.parquet"))
    schema = pq.read_schema(env / "d.parquet")
    assert schema.names == [*DATASET_COLUMNS, "_extra"]
    assert str(schema.field("tags").type) == "list<element: string>"
    assert str(schema.field("is_root").type) == "bool"
    assert all(str(schema.field(n).type) == "string" for n in schema.names if n not in ("tags", "is_root"))
    table = pq.read_table(env / "d.parquet").to_pylist()
    row = next(r for r in table if r["id"] == "case-4")
    assert json.loads(row["metadata"])["run_output"] == "model said 4" and row["tags"] == ["support", "batch-1"]


def test_parquet_row_groups_gather_batches(tmp_path):
    """Row groups span several batches (the footer's metadata, held until close, stays small);
    no min/max statistics on JSON text."""
    from pipelines_repo.export.writers import ParquetWriter

    rows = [{"id": f"r{i}", "input": {"q": "x" * 50, "i": i}, "tags": ["a"], "is_root": True} for i in range(2500)]
    with open(tmp_path / "r.parquet", "wb") as handle:
        writer = ParquetWriter(["id", "input", "tags", "is_root"], row_group_rows=1000)
        writer.start(handle)
        for start in range(0, len(rows), 300):
            writer.write(rows[start:start + 300])
        writer.finish()
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1200, 1200, 100]
    assert meta.row_group(0).column(0).is_stats_set and not meta.row_group(0).column(1).is_stats_set
    table = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert json.loads(table[2499]["input"]) == {"i": 2499, "q": "x" * 50}


def test_logs_as_traces_roll_up(seeded, env, s3_server, capsys):  # noqa: F811
    bucket = s3_server.make_bucket()
    result = run(capsys, "export", "logs", "--project", PROJECT, "--scope", "traces", "--format", "parquet",
                 "--out", f"s3://{bucket}/t/")
    assert result["rows"] == 12
    local = fetch(s3_server, result["paths"][0], env / "t.parquet")
    assert pq.read_schema(local).names == [*TRACE_COLUMNS, "_extra"]
    rows = pq.read_table(local).to_pylist()
    assert sorted(r["root_span_id"] for r in rows) == sorted(seeded["traces"])
    for row in rows:
        i = seeded["traces"][row["root_span_id"]]
        assert row["is_root"] is True and row["span_count"] == 3
        scores, metrics = json.loads(row["scores"]), json.loads(row["metrics"])
        assert scores["helpful"] == 1.0
        assert scores["quality"] == pytest.approx((0.5 + i / 20 + (i + 1) / 20) / 3)
        assert (metrics["prompt_tokens"], metrics["completion_tokens"], metrics["tokens"]) == (21, 10, 31)
        assert metrics["start"] <= metrics["end"]


def test_logs_as_spans_with_filter_and_window(seeded, env, capsys):
    result = run(capsys, "export", "logs", "--project", PROJECT, "--window", "1d", "--filter", "span_attributes.type = 'llm'",
                 "--out", str(env / "spans.jsonl"))
    rows = [json.loads(line) for line in (env / "spans.jsonl").read_text().splitlines()]
    assert result["rows"] == len(rows) == 24 and all(r["metrics"]["tokens"] for r in rows)
    run(capsys, "export", "logs", "--project", PROJECT, "--format", "csv", "--out", str(env / "spans"))
    with open(env / "spans" / "spans.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert "scores.quality" in header and "metrics.tokens" in header and "metadata.user" in header


def test_wrong_secret_and_missing_bucket(seeded, env, s3_server, capsys, monkeypatch):  # noqa: F811
    bucket = s3_server.make_bucket()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-7d1e9a")
    text = fail(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", f"s3://{bucket}/x/")
    assert "credentials" in text and "Fix:" in text and "AWS_SECRET_ACCESS_KEY" in text
    assert "not-the-secret-7d1e9a" not in text and s3_server.secret not in text
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    text = fail(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", "s3://no-such-bucket-zz/x/")
    assert "bucket does not exist" in text and "Fix: create the bucket" in text and s3_server.secret not in text
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    text = fail(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--out", f"s3://{bucket}/x/")
    assert "cannot be reached" in text and "AWS_ENDPOINT_URL" in text and s3_server.secret not in text


def test_no_overwrite_is_conditional(seeded, env, s3_server, capsys):  # noqa: F811
    out = f"s3://{s3_server.make_bucket()}/once/cases.jsonl"
    run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--no-overwrite", "--out", out)
    text = fail(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "cases", "--no-overwrite", "--out", out)
    assert "already exists" in text and "Fix:" in text


def test_dataset_at_version_and_snapshot(seeded, env, capsys, served_plane):
    source = env / "pinned.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in DATASET_ROWS))
    run(capsys, "datasets", "upload", str(source), "--project", PROJECT, "--dataset", "pinned")
    first = run(capsys, "datasets", "versions", "pinned", "--project", PROJECT)["versions"][-1]["xact_id"]
    run(capsys, "datasets", "snapshots", "create", "pinned", "--project", PROJECT, "--name", "v1")
    later = env / "later.jsonl"  # a row written after the pinned version
    later.write_text(json.dumps({"id": "late-row", "input": {"q": "late"}, "tags": ["batch-0"]}) + "\n")
    run(capsys, "datasets", "upload", str(later), "--project", PROJECT, "--dataset", "pinned")
    pinned = len([r for r in DATASET_ROWS if "batch-0" in r["tags"]])
    for flag, value in (("--version", str(first)), ("--snapshot", "v1")):
        result = run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "pinned", flag, value,
                     "--filter", "tags INCLUDES 'batch-0'", "--out", str(env / f"v{flag}.jsonl"))
        assert result["rows"] == pinned, flag
    head = run(capsys, "export", "dataset", "--project", PROJECT, "--dataset", "pinned",
               "--filter", "tags INCLUDES 'batch-0'", "--out", str(env / "head.jsonl"))
    assert head["rows"] == pinned + 1


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "parquet"])
def test_sql_each_fmt(seeded, env, capsys, fmt):
    query = f"SELECT id, scores FROM project_logs('{seeded['project_id']}') WHERE is_root = true"
    out = env / f"q.{fmt}"
    result = run(capsys, "sql", query, "--fmt", fmt, "--out", str(out))
    assert result["rows"] == 12
    if fmt == "json":
        assert len(json.loads(out.read_text())) == 12
    elif fmt == "jsonl":
        assert all("scores" in json.loads(line) for line in out.read_text().splitlines())
    elif fmt == "csv":
        assert "scores.helpful" in next(csv.reader(io.StringIO(out.read_text())))
    else:
        assert pq.read_table(out).num_rows == 12


def test_sql_stdout_paging_tz_offset_and_audit_log(seeded, env, capsys):
    pid = seeded["project_id"]
    capsys.readouterr()
    assert cli(["sql", f"SELECT * FROM project_logs('{pid}') LIMIT 5", "--fmt", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert cli(["sql", f"select: * | from: project_logs('{pid}') | filter: created >= current_date - interval 1 day",
                "--fmt", "jsonl", "--tz-offset", "480"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 36
    assert cli(["sql", f"SELECT * FROM project_logs('{pid}') WHERE created > current_date + interval 2 day",
                "--fmt", "jsonl", "--tz-offset", "-600"]) == 0
    assert capsys.readouterr().out == ""
    assert cli(["sql", "SELECT * FROM dataset('cases') WHERE id = 'case-1'", "--audit-log", "--fmt", "jsonl"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [a["action"] for a in row["audit_data"]] == ["upsert"] and row["audit_data"][0]["_xact_id"] == row["_xact_id"]


def test_sql_pages_past_one_page(seeded, env, capsys, served_plane):
    conn = sqlite3.connect(served_plane.db)
    (total,) = conn.execute("SELECT count(*) FROM rows r JOIN objects o ON o.pk = r.obj WHERE o.id = ? AND r.head = 1 AND r.deleted = 0",
                            (seeded["project_id"],)).fetchone()
    conn.close()
    result = run(capsys, "sql", f"SELECT id FROM project_logs('{seeded['project_id']}')", "--fmt", "jsonl",
                 "--out", str(env / "all.jsonl"))
    assert result["rows"] == total == 36
