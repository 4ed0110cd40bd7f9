"""Retention on the embedded local plane: 40 days of logs, a 30-day policy, the guard, archive and
resolve, kills, "*", bad declarations, the CLI, and apply="braintrust".

Ground truth is read straight from the SQLite file (head rows and every stored version), never
through the retention code.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest

from helpers import write_pipeline
from pipelines_repo.backend import open_client
from pipelines_repo.cli.main import main as cli_main
from pipelines_repo.local.seed import seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.orchestration import build_definitions
from pipelines_repo.orchestration.compiler import ERRORS_GROUP
from pipelines_repo.retention.apply import apply_policy
from pipelines_repo.retention.spec import build_policy
from pipelines_repo.settings import ApiSettings

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PROJECT = "Customer Support"
DAYS, KEEP, SPANS_PER_DAY = 40, 30, 40
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
CUTOFF = TODAY - timedelta(days=KEEP)
CUTOFF_TEXT = CUTOFF.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
EXPIRED = [(TODAY - timedelta(days=DAYS - i)).date() for i in range(DAYS - KEEP)]
KEY = dg.AssetKey(["logs_30d", "retention"])

POLICY = """
    from pipelines_repo import RetentionPolicy

    RetentionPolicy(name="logs-30d", project={project!r}, object_type="project_logs", retention_days=30{extra})
"""
PIPELINE = f"""
    from pipelines_repo import DatasetPipeline

    DatasetPipeline(
        name="support-cases",
        source={{"project_name": {PROJECT!r}, "filter": "metadata.flagged = true", "scope": "span"}},
        transform=lambda input, output, metadata: {{"input": input, "expected": output}},
        target={{"project_name": {PROJECT!r}, "dataset_name": "Support cases"}},
        start_date="{(TODAY - timedelta(days=DAYS)).date().isoformat()}",
    )
"""


# -- ground truth from the file ---------------------------------------------------------------------


def project_pk(db: Path, project_id: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT pk FROM objects WHERE kind='project' AND id=?", (project_id,)).fetchone()[0]


def snapshot(db: Path, project_id: str) -> dict[str, Any]:
    """Live head rows (id -> (created, data)), versions of rows older than the cutoff, all versions."""
    obj = project_pk(db, project_id)
    conn = sqlite3.connect(db)
    try:
        live = {rid: (created, data) for rid, created, data in conn.execute(
            "SELECT id, created, data FROM rows WHERE obj=? AND head=1 AND deleted=0", (obj,))}
        (old_versions,) = conn.execute("SELECT count(*) FROM rows WHERE obj=? AND created < ?", (obj, CUTOFF_TEXT)).fetchone()
        (versions,) = conn.execute("SELECT count(*) FROM rows WHERE obj=?", (obj,)).fetchone()
    finally:
        conn.close()
    return {"live": live, "old_versions": old_versions, "versions": versions}


def per_day(live: dict[str, tuple[str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for created, _ in live.values():
        out[created[:10]] = out.get(created[:10], 0) + 1
    return out


def file_size(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db.stat().st_size


def seed(db: Path, project: str = PROJECT, seed_value: int = 5) -> str:
    with httpx.Client(transport=InProcessTransport(db), base_url=InProcessTransport.BASE_URL, timeout=120) as http:
        return seed_demo_logs(http, project, days=DAYS, spans_per_day=SPANS_PER_DAY, seed=seed_value, end=TODAY).project_id


@pytest.fixture
def plane(isolated_home: Path) -> tuple[Path, str]:
    db = isolated_home / "braintrust-local.db"
    return db, seed(db)


def run_retention(defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey = KEY) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        defs.assets, selection=dg.AssetSelection.assets(key).without_checks() | dg.AssetSelection.checks_for_assets(key),
        resources={"braintrust": defs.resources["braintrust"]}, instance=instance, raise_on_error=False,
    )


def materialize_days(defs: dg.Definitions, instance: dg.DagsterInstance, days: list[date]) -> None:
    for day in days:
        result = dg.materialize(
            defs.assets, selection=dg.AssetSelection.groups("support_cases"), partition_key=day.isoformat(),
            resources={"braintrust": defs.resources["braintrust"]}, instance=instance, raise_on_error=False,
        )
        assert result.success


def meta(result: dg.ExecuteInProcessResult, name: str) -> Any:
    (event,) = [e for e in result.get_asset_materialization_events() if e.materialization.asset_key == KEY]
    value = event.materialization.metadata[name]
    return getattr(value, "value", value)


def check(result: dg.ExecuteInProcessResult, name: str = "harvested_before_expiry") -> dg.AssetCheckEvaluation:
    (evaluation,) = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return evaluation


# -- tests ---------------------------------------------------------------------------------------------


def test_deletes_exactly_the_expired_rows_purges_history_and_shrinks_the_file(
    plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance,
) -> None:
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=""))
    old_ids = sorted(k for k, v in snapshot(db, project_id)["live"].items() if v[0] < CUTOFF_TEXT)[:5]
    with open_client(ApiSettings(), local_db=db) as client:  # history: a second version of a few expired rows
        client.insert_rows({"id": rid, "project_id": project_id, "log_id": "g", "_is_merge": True, "scores": {"review": 1}} for rid in old_ids)
    before = snapshot(db, project_id)
    expired = {rid for rid, (created, _) in before["live"].items() if created < CUTOFF_TEXT}
    kept = {rid: v for rid, v in before["live"].items() if v[0] >= CUTOFF_TEXT}
    assert len(expired) == SPANS_PER_DAY * len(EXPIRED) and before["old_versions"] > len(expired)
    size_before = file_size(db)

    result = run_retention(build_definitions(folder), instance)
    assert result.success
    after = snapshot(db, project_id)
    assert after["live"] == kept  # other rows untouched, byte for byte
    assert after["old_versions"] == 0  # no version (nor tombstone) of a deleted row is left
    assert file_size(db) < size_before
    assert meta(result, "deleted_rows") == len(expired)
    assert meta(result, "deleted_per_day") == {PROJECT: {d: n for d, n in per_day(before["live"]).items() if d < CUTOFF_TEXT[:10]}}
    assert meta(result, "cutoff") == CUTOFF_TEXT
    assert check(result).passed

    again = run_retention(build_definitions(folder), instance)  # nothing left to do
    assert again.success and meta(again, "deleted_rows") == 0 and snapshot(db, project_id)["live"] == kept


def test_guard_holds_back_unharvested_days_until_they_are_materialized(
    plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance,
) -> None:
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "support_cases.py", PIPELINE)
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=""))
    defs = build_definitions(folder)
    missing = EXPIRED[3:5]
    materialize_days(defs, instance, [d for d in EXPIRED if d not in missing])

    result = run_retention(defs, instance)
    # The blocking check fails the step, after the materialization recorded what was deleted.
    assert not result.success
    evaluation = check(result)
    assert not evaluation.passed and "2 expired day(s) held back" in evaluation.description
    held = meta(result, "held_back_days")[PROJECT]
    assert sorted(held) == [d.isoformat() for d in missing]
    assert all("support-cases" in reason for reasons in held.values() for reason in reasons)
    left = per_day({k: v for k, v in snapshot(db, project_id)["live"].items() if v[0] < CUTOFF_TEXT})
    assert left == {d.isoformat(): SPANS_PER_DAY for d in missing}

    materialize_days(defs, instance, missing)
    second = run_retention(defs, instance)
    assert second.success and check(second).passed
    assert meta(second, "deleted_rows") == SPANS_PER_DAY * len(missing)
    assert snapshot(db, project_id)["old_versions"] == 0


def test_killed_mid_delete_then_rerun_ends_like_a_single_run(plane: tuple[Path, str], tmp_path: Path) -> None:
    db, project_id = plane
    twin = tmp_path / "twin.db"
    with sqlite3.connect(db) as conn:  # a consistent copy of the seeded file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db, twin)
    policy = build_policy("logs-30d", project=PROJECT, retention_days=KEEP)

    class Killed(BaseException):
        pass

    batches = []

    def kill_after_three(done: int) -> None:  # the process dies right after its third batch
        batches.append(done)
        if len(batches) == 3:
            raise Killed

    with open_client(ApiSettings(), local_db=db) as client:
        with pytest.raises(Killed):
            apply_policy(client, policy, batch_size=25, on_batch=kill_after_three)
        partial = snapshot(db, project_id)
        assert 0 < len([v for v in partial["live"].values() if v[0] < CUTOFF_TEXT]) < SPANS_PER_DAY * len(EXPIRED)
        apply_policy(client, policy, batch_size=25)
    with open_client(ApiSettings(), local_db=twin) as client:
        apply_policy(client, policy, batch_size=25)
    assert snapshot(db, project_id) == snapshot(twin, project_id)


def test_star_covers_a_project_created_after_the_policy(plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance) -> None:
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "retention.py", POLICY.format(project="*", extra=""))
    defs = build_definitions(folder)
    later = seed(db, "Created later", seed_value=9)  # after the policy was declared and compiled
    result = run_retention(defs, instance)
    assert result.success
    for pid in (project_id, later):
        state = snapshot(db, pid)
        assert state["old_versions"] == 0 and len(state["live"]) == SPANS_PER_DAY * KEEP
    assert set(meta(result, "deleted_per_day")) == {PROJECT, "Created later"}


def test_bad_declarations_land_in_errors_and_unknown_project_fails_the_run(
    plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance,
) -> None:
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "support_cases.py", PIPELINE)
    write_pipeline(folder, "negative.py", POLICY.replace("retention_days=30", "retention_days=-1").format(project=PROJECT, extra=""))
    write_pipeline(folder, "kind.py", POLICY.replace('"project_logs"', '"prompt"').format(project=PROJECT, extra=""))
    write_pipeline(folder, "unknown.py", POLICY.replace("logs-30d", "nowhere").format(project="No such project", extra=""))
    defs = build_definitions(folder)
    errors = {a.key.path[1]: a.description for a in defs.assets if isinstance(a, dg.AssetSpec) and a.key.path[0] == ERRORS_GROUP}
    assert set(errors) == {"negative", "kind"}
    assert "retention_days must be an integer >= 0 (got -1)" in errors["negative"]
    assert "unknown object_type 'prompt'" in errors["kind"]
    keys = {k.to_user_string() for a in defs.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert {"support_cases/dataset_version", "nowhere/retention"} <= keys

    result = run_retention(defs, instance, dg.AssetKey(["nowhere", "retention"]))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "project 'No such project' does not exist" in failure.step_failure_data.error.message


def test_archive_keeps_lineage_resolvable(
    plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "support_cases.py", PIPELINE)
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=', archive={"path": "archive", "format": "jsonl"}'))
    defs = build_definitions(folder)
    materialize_days(defs, instance, EXPIRED)
    with open_client(ApiSettings(), local_db=db) as client:
        dataset = client.find_dataset(project_id, "Support cases")
        rows = list(client.fetch_dataset(dataset["id"]))
    old = [r for r in rows if r["origin"]["id"] in {k for k, v in snapshot(db, project_id)["live"].items() if v[0] < CUTOFF_TEXT}]
    assert old, "some dataset rows come from spans that will expire"

    result = run_retention(defs, instance)
    assert result.success and meta(result, "deleted_rows") == SPANS_PER_DAY * len(EXPIRED)
    manifests = meta(result, "archive_manifests")
    assert len(manifests) == len(EXPIRED)
    manifest = json.loads(Path(manifests[0]).read_text())
    assert manifest["rows"] == SPANS_PER_DAY and manifest["date"] == EXPIRED[0].isoformat()
    assert Path(manifests[0]).parent == folder / "archive" / f"project={project_id}" / f"date={EXPIRED[0].isoformat()}"

    origin = old[0]["origin"]["id"]
    assert origin not in snapshot(db, project_id)["live"]
    monkeypatch.setenv("PIPELINES_DIR", str(folder))
    capsys.readouterr()
    assert cli_main(["retention", "resolve", "--project", PROJECT, "--span-id", origin]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["id"] == origin and found["input"] == old[0]["input"]


def test_cli_preview_and_apply(plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "support_cases.py", PIPELINE)
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=""))
    monkeypatch.setenv("PIPELINES_DIR", str(folder))
    materialize_days(build_definitions(folder), instance, EXPIRED[:2])
    capsys.readouterr()

    assert cli_main(["retention", "preview", "logs-30d", "--json"]) == 0
    (target,) = json.loads(capsys.readouterr().out)["targets"]
    assert [d["day"] for d in target["days"]] == [d.isoformat() for d in EXPIRED]
    assert [bool(d["held_back"]) for d in target["days"]] == [False, False] + [True] * (len(EXPIRED) - 2)
    assert cli_main(["retention", "preview", "logs-30d"]) == 0
    text = capsys.readouterr().out
    assert f"{EXPIRED[2].isoformat()}" in text and "HOLD BACK: pipeline 'support-cases' has not materialized" in text

    assert cli_main(["retention", "apply", "logs-30d", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 2 * SPANS_PER_DAY
    assert cli_main(["retention", "apply", "logs-30d", "--force"]) == 0
    captured = capsys.readouterr()
    assert "--force: the guard is ignored" in captured.err
    assert snapshot(db, project_id)["old_versions"] == 0


# -- apply="braintrust" ------------------------------------------------------------------------------


class FakeAutomations:
    """Just the project and automation calls of the client, kept in memory (the sync's logic)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def get_project(self, name: str | None = None, id: str | None = None) -> dict[str, Any] | None:
        return {"id": "p1", "name": name} if name == PROJECT else None

    def list_project_automations(self, project_id: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.objects.values() if a["project_id"] == project_id and a["name"] == name]

    def create_project_automation(self, project_id: str, name: str, config: dict, description: str | None = None) -> dict:
        made = {"id": f"a{len(self.objects)}", "project_id": project_id, "name": name, "config": dict(config), "description": description}
        self.objects[made["id"]] = made
        return made

    def patch_project_automation(self, automation_id: str, patch: dict) -> dict:
        self.objects[automation_id].update(patch)
        return self.objects[automation_id]


def test_automation_sync_creates_updates_and_reports_drift() -> None:
    from pipelines_repo.retention.automation import sync_policy

    fake = FakeAutomations()
    policy = build_policy("logs-30d", project=PROJECT, retention_days=30, apply="braintrust")
    assert [s.action for s in sync_policy(fake, policy)] == ["created"]  # type: ignore[arg-type]
    (made,) = fake.objects.values()
    assert made["config"] == {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}
    assert [s.action for s in sync_policy(fake, policy)] == ["unchanged"]  # type: ignore[arg-type]
    shorter = build_policy("logs-30d", project=PROJECT, retention_days=14, apply="braintrust")
    assert [s.action for s in sync_policy(fake, shorter)] == ["updated"]  # type: ignore[arg-type]
    assert made["config"]["retention_days"] == 14
    made["config"] = {**made["config"], "retention_days": 7}  # someone edits it in Braintrust
    (drift,) = sync_policy(fake, shorter)  # type: ignore[arg-type]
    assert drift.action == "drift" and drift.server["retention_days"] == 7 and drift.last_written["retention_days"] == 14
    assert made["config"]["retention_days"] == 7  # left alone
    assert [s.action for s in sync_policy(fake, shorter, force=True)] == ["updated"]  # type: ignore[arg-type]


def test_apply_braintrust_against_the_local_automation_routes(
    plane: tuple[Path, str], tmp_path: Path, instance: dg.DagsterInstance,
) -> None:
    """Against the local plane's /v1/project_automation routes."""
    db, project_id = plane
    folder = tmp_path / "pipelines"
    write_pipeline(folder, "retention.py", POLICY.format(project=PROJECT, extra=', apply="braintrust"'))
    key_checks = ("harvested_before_expiry", "automation_in_sync")

    def run() -> tuple[list[dict[str, Any]], dict[str, bool]]:
        result = run_retention(build_definitions(folder), instance)
        return meta(result, "automations"), {c.check_name: c.passed for c in result.get_asset_check_evaluations() if c.check_name in key_checks}

    synced, checks = run()
    assert [s["action"] for s in synced] == ["created"] and checks["automation_in_sync"]
    with open_client(ApiSettings(), local_db=db) as client:
        (automation,) = client.list_project_automations(project_id=project_id, name="logs-30d")
        assert automation["config"]["event_type"] == "retention" and automation["config"]["retention_days"] == 30
    assert snapshot(db, project_id)["old_versions"] > 0  # Braintrust deletes, not us

    write_pipeline(folder, "retention.py", POLICY.replace("retention_days=30", "retention_days=20").format(project=PROJECT, extra=', apply="braintrust"'))
    synced, checks = run()
    assert [s["action"] for s in synced] == ["updated"] and checks["automation_in_sync"]

    with open_client(ApiSettings(), local_db=db) as client:
        client.patch_project_automation(automation["id"], {"config": {**automation["config"], "retention_days": 5}})
    synced, checks = run()
    assert [s["action"] for s in synced] == ["drift"] and not checks["automation_in_sync"]
