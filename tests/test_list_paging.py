"""List routes page with `limit` / `starting_after` on the local plane, and the client reads every page."""

from __future__ import annotations

from pathlib import Path

from pipelines_repo.backend import open_client
from pipelines_repo.settings import ApiSettings


def test_every_experiment_dataset_and_automation_comes_back_across_pages(isolated_home: Path) -> None:
    with open_client(ApiSettings(), local_db=isolated_home / "plane.db") as client:
        project = client.ensure_project("Paged")
        made = {"experiment": [], "dataset": [], "automation": []}
        for i in range(5):
            made["experiment"].append(client._post_json("/v1/experiment", {"project_id": project["id"], "name": f"e{i}"},
                                                        endpoint="POST /v1/experiment")["id"])
            made["dataset"].append(client.ensure_dataset(project["id"], f"d{i}")["id"])
            made["automation"].append(client.create_project_automation(project["id"], f"a{i}", {
                "event_type": "retention", "object_type": "project_logs", "retention_days": 30 + i})["id"])
        for kind, path in (("experiment", "/v1/experiment"), ("dataset", "/v1/dataset"), ("automation", "/v1/project_automation")):
            first = client._get_json(path, endpoint="GET", params={"project_id": project["id"], "limit": 2})["objects"]
            second = client._get_json(path, endpoint="GET", params={"project_id": project["id"], "limit": 2,
                                                                    "starting_after": first[-1]["id"]})["objects"]
            assert len(first) == len(second) == 2 and not {o["id"] for o in first} & {o["id"] for o in second}, kind
            everything = client._list_all(path, {"project_id": project["id"]}, page_size=2)
            assert sorted(o["id"] for o in everything) == sorted(made[kind]), kind
        assert sorted(e["id"] for e in client.list_experiments(project["id"])) == sorted(made["experiment"])
