"""`bt-dagster datasets pipeline run|pull|transform|push` through `main([...])`, on the local plane."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines_repo.backend import open_client
from pipelines_repo.cli.main import main
from pipelines_repo.engine.window import format_timestamp

NOW = datetime.now(UTC).replace(microsecond=0)

PIPELINE = """
    from braintrust import DatasetPipeline

    def transform(input, output, metadata, id, trace):
        if input == "boom":
            raise RuntimeError("cannot handle boom")
        if not (metadata or {}).get("flagged"):
            return None
        return {"input": input, "expected": output, "metadata": {"src": id}}

    DatasetPipeline(
        name="cli",
        source={"project_name": "cli-src", "scope": "span"},
        transform=transform,
        target={"project_name": "cli-dst", "dataset_name": "golden"},
    )
"""

TRACE_PIPELINE = """
    from braintrust import DatasetPipeline

    async def transform(trace):
        spans = await trace.get_spans()
        return {"input": {"spans": len(spans)}, "metadata": {"root": trace.get_configuration()["root_span_id"]}}

    DatasetPipeline(
        name="traces",
        source={"project_name": "cli-src", "scope": "trace"},
        transform=transform,
        target={"project_name": "cli-dst", "dataset_name": "traces"},
    )
"""


@pytest.fixture
def workdir(isolated_home, tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BT_DATASET_PIPELINE_WINDOW", raising=False)
    (tmp_path / "pipe.py").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "traces.py").write_text(textwrap.dedent(TRACE_PIPELINE))
    with open_client() as client:
        project = client.ensure_project("cli-src")
        rows = []
        for i in range(20):  # 20 traces of 2 spans; every 4th root is flagged; oldest written first
            minutes = 200 - i * 10
            root = f"root{i:02d}"
            rows.append({"id": f"{root}-a", "root_span_id": root, "span_id": f"{root}-a",
                         "created": format_timestamp(NOW - timedelta(minutes=minutes)),
                         "input": f"q{i}", "output": f"a{i}", "metadata": {"flagged": i % 4 == 0},
                         "project_id": project["id"], "log_id": "g"})
            rows.append({"id": f"{root}-b", "root_span_id": root, "span_id": f"{root}-b",
                         "span_parents": [f"{root}-a"],
                         "created": format_timestamp(NOW - timedelta(minutes=minutes - 1)),
                         "input": "child", "project_id": project["id"], "log_id": "g"})
        client.insert_rows(rows)
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["datasets", "pipeline", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def dataset_rows(name: str) -> dict[str, dict]:
    with open_client() as client:
        project = client.get_project(name="cli-dst")
        dataset = client.find_dataset(project["id"], name)
        return {row["id"]: row for row in client.fetch_dataset(dataset["id"])}


def test_run_json_summary_and_rerun_keeps_rows(workdir, capsys) -> None:
    code, summary, err = cli(capsys, "run", "pipe.py", "--json")
    assert code == 0, err
    assert summary["refs"] == 40 and summary["pages"] == 1 and summary["rows"] == 5 and summary["skipped"] == 0
    assert summary["dataset"] == "golden" and summary["dataset_url"].endswith("/p/cli-dst/datasets/golden")
    assert summary["requests"] > 0 and summary["dataset_version"]
    assert "local data plane" in summary["plane"]
    rows = dataset_rows("golden")
    assert set(rows) == {f"root{i:02d}-a" for i in range(0, 20, 4)}
    assert rows["root00-a"]["input"] == "q0" and rows["root00-a"]["expected"] == "a0"
    assert rows["root00-a"]["metadata"] == {"src": "root00-a"}
    assert rows["root00-a"]["origin"]["id"] == "root00-a"

    code, again, _ = cli(capsys, "run", "pipe.py", "--json")
    assert code == 0 and len(dataset_rows("golden")) == 5
    # change-aware: nothing changed, nothing is sent, no new version
    assert again["dataset_version"] == summary["dataset_version"] and (again["rows"], again["unchanged"]) == (0, 5)


@pytest.fixture
def run_json(workdir, capsys):
    """``bt-dagster datasets pipeline run pipe.py --json <flags>`` in the seeded workdir."""

    def run(*flags: str) -> tuple[int, dict | None, str]:
        return cli(capsys, "run", "pipe.py", "--json", *flags)

    return run


def test_run_limit_caps_the_number_of_refs(run_json) -> None:
    code, summary, _ = run_json("--limit", "3", "--target-dataset", "small")
    assert code == 0 and summary["refs"] == 3 and summary["dataset"] == "small"


def test_run_window_keeps_only_spans_created_within_it(run_json) -> None:
    code, summary, _ = run_json("--window", "35m", "--target-dataset", "w")
    assert code == 0 and summary["refs"] == 6  # spans created in the last 35 minutes


def test_run_window_defaults_to_the_environment_variable(run_json, monkeypatch) -> None:
    monkeypatch.setenv("BT_DATASET_PIPELINE_WINDOW", "35m")
    code, summary, _ = run_json("--target-dataset", "w")
    assert summary["refs"] == 6


def test_run_start_and_end_select_an_absolute_window(run_json) -> None:
    start = format_timestamp(NOW - timedelta(minutes=201))
    end = format_timestamp(NOW - timedelta(minutes=185))
    code, summary, _ = run_json("--start", start, "--end", end, "--no-limit", "--target-dataset", "abs")
    assert code == 0 and summary["refs"] == 4 and summary["rows"] == 1


def test_run_root_span_ids_replace_the_window(run_json) -> None:
    code, summary, _ = run_json("--root-span-id", "root04", "--root-span-id", "root05",
                                "--window", "1s", "--target-dataset", "roots")
    assert code == 0 and summary["refs"] == 4 and summary["rows"] == 1


def test_run_source_filter_and_target_project_override_the_pipeline(run_json) -> None:
    code, summary, _ = run_json("--source-filter", "metadata.flagged = true",
                                "--window", "1d", "--target-project", "other", "--target-dataset", "filtered")
    assert code == 0 and summary["refs"] == 5 and summary["target_project"] == "other"


def test_trace_scope_run(workdir, capsys) -> None:
    code, summary, err = cli(capsys, "run", "traces.py", "--json", "--limit", "4")
    assert code == 0, err
    assert summary["scope"] == "trace" and summary["refs"] == 4 and summary["rows"] == 4
    rows = dataset_rows("traces")
    assert set(rows) == {"root19", "root18", "root17", "root16"}  # fallback id: the root span id
    assert rows["root19"]["input"] == {"spans": 2}
    assert rows["root19"]["origin"]["id"] == "root19-a"  # the root span


def test_staged_pull_transform_push_with_in_defaults(workdir, capsys) -> None:
    code, pulled, err = cli(capsys, "pull", "pipe.py", "--json", "--limit", "20")
    assert code == 0, err
    assert set(pulled) >= {"out", "pages", "refs", "scope", "source_project", "source_project_id"}
    assert pulled["refs"] == 20 and Path(pulled["out"]).parent.parent == Path("bt-sync/dataset_pipeline_pipe")
    code, transformed, err = cli(capsys, "transform", "pipe.py", "--json")
    assert code == 0, err
    assert transformed["candidates"] == 20 and transformed["rows"] == 2
    assert transformed["out"] == str(Path(pulled["out"]).parent / "transformed.jsonl")
    code, pushed, err = cli(capsys, "push", "pipe.py", "--json")
    assert code == 0, err
    assert pushed["status"] == "completed" and pushed["rows_uploaded"] == 2
    assert set(pushed) >= {"status", "spec_dir", "input_path", "object_url", "rows_uploaded", "pages_done", "bytes_sent"}
    code, pushed, _ = cli(capsys, "push", "pipe.py", "--json")
    assert pushed["status"] == "already_completed" and pushed["rows_uploaded"] == 0
    code, pushed, _ = cli(capsys, "push", "pipe.py", "--json", "--force")
    # forced past the checkpoint; change-aware, so the 2 stored rows are not sent again
    assert pushed["status"] == "completed" and (pushed["rows_uploaded"], pushed["unchanged"]) == (0, 2)
    code, pushed, _ = cli(capsys, "push", "pipe.py", "--json", "--in", transformed["out"], "--target-dataset", "copy")
    assert code == 0 and pushed["dataset"] == "copy" and pushed["rows_uploaded"] == 2
    # Summary without --json: `key: value` lines on stderr, nothing on stdout.
    code, nothing, err = cli(capsys, "pull", "pipe.py", "--limit", "1", "--out", "one.jsonl")
    assert code == 0 and nothing is None
    assert "refs: 1" in err.splitlines() and Path("one.jsonl").is_file()


def test_errors_are_one_line_with_exit_code_1(workdir, capsys) -> None:
    code, _, err = cli(capsys, "run", "pipe.py", "--source-project", "nope")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: source project 'nope' not found in organization 'local'. Fix: check source.project_name in the "
        "pipeline (or pass --source-project / --source-project-id), and BRAINTRUST_ORG_NAME / --source-org."
    ]
    code, _, err = cli(capsys, "run", "pipe.py", "--source-filter", "metadata.flagged ===")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "rejected the source filter 'metadata.flagged ==='" in err and "Fix:" in err
    code, _, err = cli(capsys, "pull", "pipe.py", "--window", "bad")
    assert code == 1 and "invalid dataset pipeline pull window 'bad'" in err
    Path("broken.py").write_text("def oops(:\n")
    code, _, err = cli(capsys, "run", "broken.py")
    assert code == 1 and "syntax error at line 1" in err and "Traceback" not in err
    code, _, err = cli(capsys, "transform", "pipe.py", "--root", "empty-root")
    assert code == 1 and "no completed dataset pipeline pull output found for 'pipe'" in err
    code, _, err = cli(capsys, "run", "pipe.py", "--source-project", "nope", "-v")
    assert code == 1 and "Traceback" in err


def test_argument_validation(workdir, capsys) -> None:
    for args in (["pull", "pipe.py", "--target", "7"], ["pull", "pipe.py", "--limit", "0"],
                 ["run", "pipe.py", "--on-error", "ignore"], ["pull", "pipe.py", "--page-size", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(["datasets", "pipeline", *args])
        assert exc.value.code == 2
    capsys.readouterr()


def test_transform_errors_fail_or_skip(workdir, capsys) -> None:
    with open_client() as client:
        project = client.get_project(name="cli-src")
        client.insert_rows([{"id": "boom", "root_span_id": "boom", "input": "boom", "project_id": project["id"],
                             "log_id": "g"}])
    code, _, err = cli(capsys, "run", "pipe.py")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "failed for ref root_span_id='boom' id='boom': RuntimeError: cannot handle boom" in err
    assert "--on-error skip" in err
    code, summary, err = cli(capsys, "run", "pipe.py", "--json", "--on-error", "skip", "--errors", "errs.jsonl")
    assert code == 0, err
    assert summary["skipped"] == 1 and summary["rows"] == 5 and summary["errors_path"] == "errs.jsonl"
    (line,) = Path("errs.jsonl").read_text().splitlines()
    assert json.loads(line)["ref"]["id"] == "boom"
    code, _, _ = cli(capsys, "pull", "pipe.py", "--json")
    code, summary, _ = cli(capsys, "transform", "pipe.py", "--json", "--on-error", "skip")
    assert code == 0 and summary["skipped"] == 1 and Path(summary["errors_path"]).is_file()
