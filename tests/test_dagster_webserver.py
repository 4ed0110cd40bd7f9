"""The code location as the UI sees it: `dagster-webserver -w workspace.yaml` over GraphQL, and
(slow) a partition backfill launched over GraphQL under `dagster dev`, completing as ONE run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from conftest import free_port
from helpers import EXAMPLES, REPO

from pipelines_repo.backend import open_client
from pipelines_repo.settings import ApiSettings

LOCATION = "braintrust_pipelines"
PIPELINES = ("support_cases", "llm_call_traces", "user_feedback_golden", "otel_review_queue")
BIN = Path(sys.executable).parent

WORKSPACE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on RepositoryLocation {
            repositories {
              name
              assetNodes { assetKey { path } isPartitioned isMaterializable groupName }
              schedules { name scheduleState { status } }
              sensors { name sensorState { status } }
            }
          }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def make_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINTRUST_", "BT_"))}
    env.update(DAGSTER_HOME=str(home), PIPELINES_DIR=str(EXAMPLES), DAGSTER_DISABLE_TELEMETRY="1")
    return env


def start(cmd: list[str], home: Path, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=REPO, env=env_for(home), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server not ready in {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


@contextmanager
def serving(command: list[str], home: Path, log: Path, timeout: float = 120) -> Iterator[tuple[str, dict[str, Any]]]:
    """Start `command` (`dagster-webserver` or `dagster dev`) on a free port with the repo's
    workspace, wait until it answers and has loaded the code location, yield (url, repository),
    and stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start([*command, "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"], home, log)
    try:
        wait_ready(url, process, log, timeout=timeout)
        yield url, loaded_repository(url)
    finally:
        stop(process)


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def loaded_repository(url: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = graphql(url, WORKSPACE_QUERY)["workspaceOrError"]
        assert data["__typename"] == "Workspace", data
        entries = {entry["name"]: entry for entry in data["locationEntries"]}
        location = (entries.get(LOCATION) or {}).get("locationOrLoadError")
        if location and location["__typename"] == "RepositoryLocation":
            return location["repositories"][0]
        if location and location["__typename"] == "PythonError":
            raise AssertionError(f"code location failed to load: {location['message']}")
        if time.monotonic() > deadline:
            raise AssertionError(f"code location {LOCATION!r} not loaded: {entries}")
        time.sleep(0.5)


def test_webserver_loads_every_asset_schedule_and_sensor(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    with serving([str(BIN / "dagster-webserver")], home, tmp_path / "webserver.log") as (url, repo):
        nodes = {"/".join(node["assetKey"]["path"]): node for node in repo["assetNodes"]}
        for prefix in PIPELINES:
            for stage in ("pulled_refs", "transformed_rows", "dataset_version"):
                node = nodes[f"{prefix}/{stage}"]
                assert node["isPartitioned"] and node["isMaterializable"] and node["groupName"] == prefix
        for key in (
            "braintrust/customer_support/logs",
            "braintrust/customer_support/datasets/support_cases",
            "braintrust/customer_support/datasets/correct_llm_traces",
            "braintrust/customer_support/datasets/golden_answers",
        ):
            assert not nodes[key]["isMaterializable"], key
        assert not [key for key in nodes if key.startswith("_errors/")]
        assert {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]} == {
            **{f"{p}_nightly": "RUNNING" for p in PIPELINES},
            "support_logs_export": "RUNNING",  # the export_support_logs.py example (an ExportAutomation)
        }
        assert {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]} == {
            **{f"{p}_late_data": "RUNNING" for p in PIPELINES},
            "support_faq_file_changed": "RUNNING",  # the support_faq.py example (a DatasetFile)
        }
        faq = nodes["support_faq/dataset_version"]
        assert faq["isMaterializable"] and not faq["isPartitioned"] and faq["groupName"] == "support_faq"
        assert not nodes["files/support_faq"]["isMaterializable"]
        assert httpx.get(url, timeout=10).status_code == 200


MATERIALIZED = """
{
  assetNodes {
    assetKey { path }
    isPartitioned
    partitionStats { numMaterialized }
    assetMaterializations(limit: 1) { runId }
  }
}
"""


def test_first_run_opens_the_ui_on_materialized_examples(tmp_path: Path) -> None:
    """`make dev`'s first run: seed, `bt-dagster first-run`, then the UI shows every example filled."""
    home = make_home(tmp_path)
    for cmd in (["local", "seed", "--if-empty", "--project", "Customer Support", "--days", "5", "--spans-per-day", "40"],
                ["first-run"], ["first-run"]):  # the second first-run finds everything done
        done = subprocess.run([str(BIN / "bt-dagster"), *cmd], cwd=REPO, env=env_for(home), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("materialized before") == len(PIPELINES) + 1
    with serving([str(BIN / "dagster-webserver")], home, tmp_path / "webserver.log") as (url, _):
        nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(url, MATERIALIZED)["assetNodes"]}
        for prefix in PIPELINES:
            for stage in ("pulled_refs", "transformed_rows", "dataset_version"):
                node = nodes[f"{prefix}/{stage}"]
                # the closed windows with logs: the 5 seeded days before today
                assert node["partitionStats"]["numMaterialized"] == 5, (prefix, stage, node)
        assert nodes["support_faq/dataset_version"]["assetMaterializations"], "the DatasetFile example ran too"


LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}
"""
RUNS = """
query($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


@pytest.mark.slow
def test_backfill_over_graphql_completes_as_one_run(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    db = home / "braintrust-local.db"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed = subprocess.run(
        [sys.executable, "-m", "pipelines_repo.cli.main", "local", "seed", "--days", "10", "--spans-per-day", "40", "--db", str(db)],
        cwd=REPO, env=env_for(home), capture_output=True, timeout=120, check=False,
    )
    assert seed.returncode == 0, seed.stderr.decode()
    days = [(today - timedelta(days=n)).date().isoformat() for n in range(7, 0, -1)]

    log = tmp_path / "dagster-dev.log"
    with serving([str(BIN / "dagster"), "dev"], home, log, timeout=180) as (url, _):
        launched = graphql(
            url,
            LAUNCH,
            {
                "params": {
                    "assetSelection": [
                        {"path": ["support_cases", stage]} for stage in ("pulled_refs", "transformed_rows", "dataset_version")
                    ],
                    "partitionNames": days,
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline:
            backfill = graphql(url, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            status = backfill.get("status")
            if status in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED", "COMPLETED"):
                break
            time.sleep(2)
        assert status == "COMPLETED_SUCCESS", f"{status}\n{log.read_text(errors='replace')[-4000:]}"
        runs = graphql(url, RUNS, {"id": backfill_id})["runsOrError"]["results"]
        assert len(runs) == 1, runs
        tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
        assert runs[0]["status"] == "SUCCESS"
        assert tags["dagster/asset_partition_range_start"] == days[0]
        assert tags["dagster/asset_partition_range_end"] == days[-1]
        with open_client(ApiSettings(), local_db=db) as client:
            project = client.get_project(name="Customer Support")
            dataset = client.find_dataset(project["id"], "Support cases")
            assert dataset is not None and any(True for _ in client.fetch_dataset(dataset["id"]))
