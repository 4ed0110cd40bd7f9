"""Export automations end to end: ExportAutomation files -> Dagster `<name>/export` over transaction-time
windows on the in-process local plane -> a local folder or a real S3 server (SeaweedFS).

Transaction times are controlled by pinning the local plane's clock for `_xact_id` stamping, so a
test can log spans "at" 10:05, 11:10 and 12:30 and export those three hourly windows.
"""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import obstore
import pytest

from pipelines_repo.backend import open_client
from pipelines_repo.cli.main import main as cli
from pipelines_repo.engine.loader import load_declarations
from pipelines_repo.export.automation import ExportAutomationSpec, build_spec
from pipelines_repo.export.layout import MANIFEST, SUCCESS, is_complete, read_manifest
from pipelines_repo.export.sinks import LocalSink, open_sink
from pipelines_repo.export.window_export import export_window
from pipelines_repo.local import xact as xact_module
from pipelines_repo.local.store import writes as writes_module
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.orchestration import build_definitions
from pipelines_repo.settings import ApiSettings
from s3_server import S3Server, s3_server  # noqa: F401 - the session fixture

PROJECT = "Export Automations"
DAY = "2026-11-20"
H10, H11, H12, H13 = (datetime(2026, 11, 20, h, tzinfo=UTC) for h in (10, 11, 12, 13))


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 20, hour, minute, tzinfo=UTC)


class Plane:
    """The in-process local plane of an isolated home, with a settable clock for `_xact_id`s."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch):
        self.home, self.db = home, home / "braintrust-local.db"
        self.now = at(9, 0)
        real = xact_module.next_xact_id
        monkeypatch.setattr(writes_module, "next_xact_id", lambda previous, _: real(previous, self.now.timestamp()))
        self.http = httpx.Client(transport=InProcessTransport(self.db), base_url=InProcessTransport.BASE_URL, timeout=60)
        self.project_id = self.http.post("/v1/project", json={"name": PROJECT}).json()["id"]

    def log(self, when: datetime, trace: str, spans: int, *, first: int = 0) -> None:
        """``spans`` spans of trace ``trace`` (the root when ``first == 0``), written at ``when``."""
        self.now = when
        events = []
        for i in range(first, first + spans):
            events.append({
                "id": f"{trace}-{i}", "root_span_id": trace, "span_id": f"{trace}-{i}",
                "span_parents": None if i == 0 else [f"{trace}-0"], "input": {"q": f"{trace} {i}"},
                "output": f"answer {i}", "scores": {"quality": 0.5}, "metrics": {"start": when.timestamp(), "tokens": 3},
                "created": when.isoformat().replace("+00:00", "Z"),
            })
        response = self.http.post(f"/v1/project_logs/{self.project_id}/insert", json={"events": events})
        assert response.status_code == 200, response.text

    def client(self):
        return open_client(ApiSettings(), local_db=self.db)


@pytest.fixture
def plane(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Plane:
    p = Plane(isolated_home, monkeypatch)
    yield p
    p.http.close()


def declare(folder: Path, name: str = "logs-out", **fields: Any) -> Path:
    """A pipelines folder with one ExportAutomation file."""
    folder.mkdir(parents=True, exist_ok=True)
    args = {"project": PROJECT, "export_definition": {"type": "log_spans"}, "format": "jsonl",
            "interval_seconds": 3600, "start_from": DAY, **fields}
    body = ",\n    ".join(f"{k}={v!r}" for k, v in args.items())
    (folder / f"{name.replace('-', '_')}.py").write_text(
        f"from pipelines_repo import ExportAutomation\n\nExportAutomation(\n    name={name!r},\n    {body},\n)\n")
    return folder


def materialize(defs: dg.Definitions, key: dg.AssetKey, instance, first: str, last: str | None = None, **kw):
    tags = {} if last is None else {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    return dg.materialize([*defs.assets, *(defs.asset_checks or [])], selection=dg.AssetSelection.assets(key), partition_key=first if last is None else None,
                          tags=tags, resources={"braintrust": defs.resources["braintrust"]}, instance=instance,
                          raise_on_error=False, **kw)


def per_window(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out = {}
    for event in result.get_asset_materialization_events():
        m = event.materialization
        out[m.partition] = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
    return out


def jsonl_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(folder.glob("part-*.jsonl")) for line in p.read_text().splitlines()]


# -- windows, layout, late data, re-runs ---------------------------------------------------------


def test_three_windows_then_a_late_span_lands_in_a_later_window(plane: Plane, instance, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipelines = declare(tmp_path / "pipelines", export_path=str(out))
    plane.log(at(10, 5), "a", 2)
    plane.log(at(11, 10), "b", 2)
    plane.log(at(12, 30), "c", 3)
    defs = build_definitions(pipelines, strict=True)
    key = dg.AssetKey(["logs_out", "export"])

    result = materialize(defs, key, instance, f"{DAY}-10:00", f"{DAY}-12:00")
    assert result.success
    assert len(instance.get_runs()) == 1, "a backfill over three windows is one run"
    meta = per_window(result)
    assert {k: v["rows"] for k, v in meta.items()} == {f"{DAY}-10:00": 2, f"{DAY}-11:00": 2, f"{DAY}-12:00": 3}
    for hour, trace, n in (("10", "a", 2), ("11", "b", 2), ("12", "c", 3)):
        folder = out / f"date={DAY}" / f"hour={hour}"
        assert sorted(p.name for p in folder.iterdir()) == [SUCCESS, MANIFEST, "part-00000.jsonl"]
        assert {r["id"] for r in jsonl_rows(folder)} == {f"{trace}-{i}" for i in range(n)}
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["rows"] == n and manifest["files"][0]["key"] == f"date={DAY}/hour={hour}/part-00000.jsonl"
        assert manifest["files"][0]["bytes"] == (folder / "part-00000.jsonl").stat().st_size
        assert len(manifest["files"][0]["sha256"]) == 64
        assert int(manifest["xact_after"]) < int(manifest["min_xact_id"]) <= int(manifest["max_xact_id"]) <= int(manifest["xact_through"])
        window = meta[f"{DAY}-{hour}:00"]
        assert window["files"] == 1 and window["manifest"].endswith(MANIFEST) and window["lag_seconds"] > 0

    # a span of trace "a" (window 10) logged late, at 13:20: exported with window 13, not 10
    plane.log(at(13, 20), "a", 1, first=2)
    late = materialize(defs, key, instance, f"{DAY}-13:00")
    assert late.success
    assert [r["id"] for r in jsonl_rows(out / f"date={DAY}" / "hour=13")] == ["a-2"]
    again = materialize(defs, key, instance, f"{DAY}-10:00")
    assert per_window(again)[f"{DAY}-10:00"]["rows"] == 2


def test_rerun_keeps_keys_and_counts_and_traces_export_whole(plane: Plane, instance, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipelines = declare(tmp_path / "pipelines", export_path=str(out), export_definition={"type": "log_traces"}, rows_per_file=1)
    plane.log(at(11, 10), "b", 2)
    plane.log(at(11, 40), "d", 1)
    defs = build_definitions(pipelines, strict=True)
    key = dg.AssetKey(["logs_out", "export"])
    folder = out / f"date={DAY}" / "hour=11"
    assert materialize(defs, key, instance, f"{DAY}-11:00").success
    first = (sorted(p.name for p in folder.iterdir()), json.loads((folder / MANIFEST).read_text()))
    assert first[0] == [SUCCESS, MANIFEST, "part-00000.jsonl", "part-00001.jsonl"]
    assert [f["rows"] for f in first[1]["files"]] == [1, 1]
    assert sorted(r["span_count"] for r in jsonl_rows(folder)) == [1, 2]  # one rolled-up row per trace

    assert materialize(defs, key, instance, f"{DAY}-11:00").success
    second = (sorted(p.name for p in folder.iterdir()), json.loads((folder / MANIFEST).read_text()))
    assert second[0] == first[0]
    assert [(f["key"], f["rows"], f["sha256"]) for f in second[1]["files"]] == [(f["key"], f["rows"], f["sha256"]) for f in first[1]["files"]]

    # a late span of trace "b" (13:05): the whole trace is exported again with window 13
    plane.log(at(13, 5), "b", 1, first=2)
    assert materialize(defs, key, instance, f"{DAY}-13:00").success
    rows = jsonl_rows(out / f"date={DAY}" / "hour=13")
    assert [(r["root_span_id"], r["span_count"]) for r in rows] == [("b", 3)]


class FailingSink:
    """A sink that raises when its second file is opened (an export killed mid-window)."""

    def __init__(self, inner):
        self.inner, self.url, self.opened = inner, inner.url, 0

    def check(self) -> None:
        self.inner.check()

    def join(self, name: str) -> str:
        return self.inner.join(name)

    def open(self, name: str):
        self.opened += 1
        if self.opened == 2:
            raise RuntimeError("killed mid-window")
        return self.inner.open(name)


def _spec(path: str, **fields: Any) -> ExportAutomationSpec:
    return build_spec(None, name="logs-out", project=PROJECT, export_definition={"type": "log_spans"},
                      export_path=path, start_from=DAY, **fields)


def test_killed_export_leaves_no_manifest_and_rerun_completes(plane: Plane, tmp_path: Path) -> None:
    plane.log(at(10, 5), "a", 3)
    spec = _spec(str(tmp_path / "out"), rows_per_file=1)
    sink = LocalSink(tmp_path / "out")
    folder = f"date={DAY}/hour=10"
    with plane.client() as client:
        done = export_window(client, spec, H10, H11)
        assert done.files == 3 and is_complete(sink, folder)
        with pytest.raises(RuntimeError, match="killed"):
            export_window(client, spec, H10, H11, sink=FailingSink(sink))
        assert not is_complete(sink, folder)
        assert not (tmp_path / "out" / folder / MANIFEST).exists() and not (tmp_path / "out" / folder / SUCCESS).exists()
        again = export_window(client, spec, H10, H11)
    assert is_complete(sink, folder) and again.rows == 3
    assert read_manifest(sink, folder).rows == 3
    assert sorted(p.name for p in (tmp_path / "out" / folder).iterdir() if p.name.startswith("part")) == [
        "part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]


def test_windows_on_s3_with_stale_parts_removed(plane: Plane, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    bucket = s3_server.make_bucket()
    plane.log(at(12, 30), "c", 3)
    folder = f"date={DAY}/hour=12"
    with plane.client() as client:
        big = export_window(client, _spec(f"s3://{bucket}/exports", rows_per_file=1, format="parquet"), H12, H13)
        assert big.files == 3
        small = export_window(client, _spec(f"s3://{bucket}/exports", rows_per_file=10, format="parquet"), H12, H13)
    assert small.files == 1 and small.stale_removed == 2
    keys = sorted(o["path"] for batch in obstore.list(s3_server.store(bucket), "exports/") for o in batch)
    assert keys == [f"exports/{folder}/{n}" for n in (SUCCESS, MANIFEST, "part-00000.parquet")]
    manifest = json.loads(bytes(obstore.get(s3_server.store(bucket), f"exports/{folder}/{MANIFEST}").bytes()))
    assert manifest["rows"] == 3 and manifest["format"] == "parquet"
    assert read_manifest(open_sink(f"s3://{bucket}/exports"), folder).rows == 3


# -- automations test / list / import, the local plane's routes ----------------------------------


def test_automations_test_names_cause_and_fix_without_the_secret(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys  # noqa: F811
) -> None:
    bucket = s3_server.make_bucket()
    pipelines = tmp_path / "pipelines"
    declare(pipelines, "good", export_path=f"s3://{bucket}/exports")
    declare(pipelines, "nobucket", export_path="s3://no-such-bucket-4242/exports")
    monkeypatch.setenv("PIPELINES_DIR", str(pipelines))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)

    assert cli(["automations", "test", "good"]) == 0
    assert "wrote and deleted" in capsys.readouterr().out
    assert not list(obstore.list(s3_server.store(bucket), "exports/")), "the probe is deleted"

    assert cli(["automations", "test", "nobucket"]) == 1
    err = capsys.readouterr().err
    assert "bucket does not exist" in err and "create the bucket" in err

    wrong = "wrong-secret-value-7781"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    assert cli(["automations", "test", "good"]) == 1
    out = capsys.readouterr()
    assert "credentials" in out.err and "AWS_SECRET_ACCESS_KEY" in out.err
    assert wrong not in out.err + out.out and s3_server.secret not in out.err + out.out

    assert cli(["automations", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["type"], r["status"]) for r in listed} == {("good", "log_spans", "active"), ("nobucket", "log_spans", "active")}


def test_destination_check_in_dagster(plane: Plane, instance, tmp_path: Path) -> None:
    pipelines = declare(tmp_path / "pipelines", export_path=str(tmp_path / "out"))
    defs = build_definitions(pipelines, strict=True)
    result = materialize(defs, dg.AssetKey(["logs_out", "export"]), instance, f"{DAY}-10:00")
    assert result.success
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {"export_destination_ok": True}


def test_paused_automation_schedule_is_stopped(tmp_path: Path) -> None:
    pipelines = declare(tmp_path / "pipelines", "paused-one", export_path=str(tmp_path / "o"), status="paused",
                        interval_seconds=86400)
    declare(pipelines, "active-one", export_path=str(tmp_path / "o2"))
    defs = build_definitions(pipelines, strict=True)
    schedules = {s.name: s for s in defs.get_repository_def().schedule_defs}
    assert schedules["paused_one_export"].default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedules["active_one_export"].default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedules["paused_one_export"].cron_schedule == "10 0 * * *"  # daily windows, 10 minutes after close
    assert schedules["active_one_export"].cron_schedule == "10 * * * *"


def test_broken_declaration_goes_to_errors_group(tmp_path: Path) -> None:
    pipelines = declare(tmp_path / "pipelines", "bad", export_path="ftp://x/y")
    defs = build_definitions(pipelines, strict=False)
    keys = {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}
    assert "_errors/bad" in keys and "bad/export" not in keys


def _validate(path: str, method: str, body: Any) -> None:
    from test_local_plane_api import _validate as validate_response

    validate_response(body, path, method)


def test_project_automation_routes_and_import(plane: Plane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    http = plane.http
    config = {"event_type": "btql_export", "export_definition": {"type": "log_traces"}, "export_path": "s3://b/p",
              "format": "parquet", "interval_seconds": 86400, "batch_size": 500, "status": "paused",
              "credentials": {"type": "aws_iam", "role_arn": "arn:aws:iam::1:role/x", "external_id": "e"}}
    body = {"project_id": plane.project_id, "name": "nightly traces", "description": "d", "config": config}
    created = http.post("/v1/project_automation", json=body).json()
    _validate("/v1/project_automation", "post", created)
    again = http.post("/v1/project_automation", json={**body, "description": "changed"}).json()
    assert again == created, "POST returns the existing automation unmodified"
    http.put("/v1/project_automation", json={"project_id": plane.project_id, "name": "retention", "config":
                                             {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}})
    listed = http.get("/v1/project_automation", params={"project_id": plane.project_id}).json()
    _validate("/v1/project_automation", "get", listed)
    assert {o["name"] for o in listed["objects"]} == {"nightly traces", "retention"}
    by_name = http.get("/v1/project_automation", params={"project_automation_name": "retention"}).json()["objects"]
    assert len(by_name) == 1
    path = f"/v1/project_automation/{created['id']}"
    patched = http.patch(path, json={"description": "patched"}).json()
    _validate("/v1/project_automation/{project_automation_id}", "patch", patched)
    assert patched["description"] == "patched" and patched["config"] == config

    monkeypatch.setenv("PIPELINES_DIR", str(tmp_path / "pipelines"))
    out = tmp_path / "pipelines" / "imported.py"
    assert cli(["automations", "import", "--project", PROJECT, "--out", str(out)]) == 0
    assert "1 export automation" in capsys.readouterr().out
    loaded = load_declarations(out).declarations
    assert [(s.name, s.kind, s.format, s.status, s.batch_size, s.interval_seconds) for s in loaded] == [
        ("nightly traces", "log_traces", "parquet", "paused", 500, 86400)]
    assert "arn:aws:iam::1:role/x" in out.read_text() and "credentials=" not in out.read_text()

    deleted = http.delete(path).json()
    _validate("/v1/project_automation/{project_automation_id}", "delete", deleted)
    assert http.get(path).status_code == 404


# -- datasets: windowed changes, full snapshots, DatasetFile(export=...) -------------------------


def test_dataset_export_automation_windows_and_snapshot(plane: Plane, tmp_path: Path) -> None:
    dataset = plane.http.post("/v1/dataset", json={"project_id": plane.project_id, "name": "golden"}).json()

    def insert(when: datetime, ids: list[str], answer: str) -> None:
        plane.now = when
        events = [{"id": i, "input": {"q": i}, "expected": answer} for i in ids]
        assert plane.http.post(f"/v1/dataset/{dataset['id']}/insert", json={"events": events}).status_code == 200

    insert(at(10, 5), ["x", "y", "z"], "v1")
    insert(at(11, 30), ["y"], "v2")  # y changed in window 11
    spec = build_spec(None, name="golden-out", project=PROJECT, export_definition={"type": "dataset", "dataset_name": "golden"},
                      export_path=str(tmp_path / "out"), start_from=DAY)
    with plane.client() as client:
        w10, w11 = export_window(client, spec, H10, H11), export_window(client, spec, H11, H12)
        snap = export_window(client, spec, H11, H12, full_snapshot=True)
    assert (w10.rows, w11.rows) == (2, 1), "y's v1 was superseded: it is exported with the window of its change"
    # the snapshot replaced window 11's folder with the whole dataset as of the window's end
    assert sorted((r["id"], r["expected"]) for r in jsonl_rows(tmp_path / "out" / f"date={DAY}" / "hour=11")) == [
        ("x", "v1"), ("y", "v2"), ("z", "v1")]
    assert snap.rows == 3 and json.loads((tmp_path / "out" / f"date={DAY}" / "hour=11" / MANIFEST).read_text())["definition"]["mode"] == "snapshot"


def test_dataset_file_export_option_adds_dataset_export(isolated_home: Path, instance, tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "faq.csv").write_text("question,answer\nhow do I log in?,use SSO\nwhere are invoices?,billing page\n")
    (pipelines / "faq.py").write_text(textwrap.dedent(f"""
        from pipelines_repo import DatasetFile
        DatasetFile(name="faq", path="faq.csv", target={{"project_name": "{PROJECT}", "dataset_name": "FAQ"}},
                    mapping={{"columns": {{"question": "input", "answer": "expected"}}}},
                    export={{"path": "{tmp_path / 'snap'}", "format": "parquet"}})
    """))
    defs = build_definitions(pipelines, strict=True)
    result = dg.materialize(defs.assets, selection=dg.AssetSelection.groups("faq"), instance=instance,
                            resources={"braintrust": defs.resources["braintrust"]})
    assert result.success
    meta = {e.materialization.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    exported = meta["faq/dataset_export"]
    version = exported["dataset_version"].value
    assert version == meta["faq/dataset_version"]["dataset_version"].value
    folder = tmp_path / "snap" / f"version={version}"
    assert sorted(p.name for p in folder.iterdir()) == [SUCCESS, MANIFEST, "part-00000.parquet"]
    assert json.loads((folder / MANIFEST).read_text())["rows"] == 2 == exported["rows"].value
