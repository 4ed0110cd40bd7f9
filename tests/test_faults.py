"""Under injected faults (429 with Retry-After, 500 after the write landed, slow answers) a pipeline
run over HTTP ends with exactly the dataset a fault-free run produces; a bad API key is one clear error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from conftest import start_plane, stop_plane
from pipelines_repo.backend import open_client
from pipelines_repo.cli.main import main
from pipelines_repo.client import BraintrustClient, RetryPolicy
from pipelines_repo.engine.loader import load_pipeline_file
from pipelines_repo.engine.push import push_file
from pipelines_repo.engine.run import run_pipeline
from pipelines_repo.local.seed import seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.settings import ApiSettings

FAULTS = "429=0.15,500=0.1,slow=0.1,slow_seconds=0.2,retry_after=0.05,seed={seed}"

PIPELINES = """
    from pipelines_repo.engine.spec import DatasetPipeline

    def per_span(input, output, metadata, id):
        if input is None:
            return None
        return {"input": input, "expected": output, "metadata": {"model": (metadata or {}).get("model")},
                "tags": ["span"]}

    async def per_trace(trace):
        spans = await trace.get_spans()
        names = sorted((s.span_attributes or {}).get("name", "") for s in spans)
        return [{"input": {"names": names}}, {"input": {"count": len(spans)}, "tags": ["count"]}]

    DatasetPipeline(name="spans", source={"project_name": "Support", "scope": "span"}, transform=per_span,
                    target={"project_name": "Curated", "dataset_name": "spans"},
                    page_size=100, push_batch_rows=50, max_concurrency=4)
    DatasetPipeline(name="traces", source={"project_name": "Support", "scope": "trace"}, transform=per_trace,
                    target={"project_name": "Curated", "dataset_name": "traces"},
                    page_size=100, push_batch_rows=40, max_concurrency=4)
"""

FIELDS = ("input", "expected", "metadata", "tags", "origin")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("faults") / "plane.db"
    transport = InProcessTransport(db)
    with httpx.Client(transport=transport, base_url=transport.BASE_URL, timeout=60) as http:
        seed_demo_logs(http, "Support", days=2, spans_per_day=300)
    transport.close()
    return db


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("pipes") / "pipes.py"
    path.write_text(textwrap.dedent(PIPELINES))
    return {spec.name: spec for spec in load_pipeline_file(path)}


def with_dataset(spec, name: str):
    return spec.model_copy(update={"target": spec.target.with_overrides(dataset_name=name)})


def contents(client: BraintrustClient, dataset_id: str) -> dict[str, dict]:
    return {row["id"]: {k: row.get(k) for k in FIELDS} for row in client.fetch_dataset(dataset_id)}


def test_runs_under_faults_equal_a_fault_free_run(seeded, specs, tmp_path) -> None:
    reference = {}
    with open_client(ApiSettings(), local_db=seeded) as local:
        for name, spec in specs.items():
            result = run_pipeline(with_dataset(spec, f"{name}-ref"), local, window=None, limit=None)
            reference[name] = contents(local, result.push.dataset_id)
    assert len(reference["spans"]) > 500 and len(reference["traces"]) > 300

    plane = start_plane(seeded, faults=FAULTS.format(seed=11))
    try:
        retry = RetryPolicy(max_attempts=10, base_delay=0.02, max_delay=0.3, budget=60)
        with BraintrustClient(ApiSettings(api_key=plane.api_key, app_url=plane.url), retry=retry) as client:
            for name, spec in specs.items():
                result = run_pipeline(with_dataset(spec, f"{name}-faulty"), client, window=None, limit=None)
                assert result.push.rows_pushed == len(reference[name])
                assert contents(client, result.push.dataset_id) == reference[name], name
            # A checkpointed file push under faults lands the same rows too.
            rows_file = tmp_path / "rows.jsonl"
            rows_file.write_text("".join(f'{{"id": "f{i}", "input": {i}}}\n' for i in range(300)))
            pushed = push_file(client, rows_file, specs["spans"].target.with_overrides(dataset_name="file"),
                               root=tmp_path / "root", batch_rows=20)
            assert pushed.rows_pushed == 300 and len(contents(client, pushed.dataset_id)) == 300
            assert client.stats.retries > 0  # the faults really happened
    finally:
        stop_plane(plane)


def test_bad_api_key_is_one_clear_error(seeded, tmp_path, monkeypatch, capsys) -> None:
    plane = start_plane(tmp_path / "auth.db", api_key="right-key")
    try:
        pipe = tmp_path / "p.py"
        pipe.write_text(textwrap.dedent("""
            from braintrust import DatasetPipeline
            DatasetPipeline(name="p", source={"project_name": "x"}, transform=lambda input: None,
                            target={"project_name": "y", "dataset_name": "z"})
        """))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("BRAINTRUST_API_KEY", "wrong-key")
        monkeypatch.setenv("BRAINTRUST_APP_URL", plane.url)
        monkeypatch.delenv("BRAINTRUST_API_URL", raising=False)
        code = main(["datasets", "pipeline", "run", "p.py", "--json"])
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        (line,) = err.strip().splitlines()
        assert line.startswith("error: POST /api/apikey/login failed with 401")
        assert "Fix: set BRAINTRUST_API_KEY" in line
    finally:
        stop_plane(plane)
