"""The official braintrust SDK, unpatched, against the served local plane on a loopback port."""

from __future__ import annotations

import uuid

import braintrust
import pytest

from conftest import ServedPlane


@pytest.fixture
def sdk(served_plane: ServedPlane, monkeypatch: pytest.MonkeyPatch) -> ServedPlane:
    monkeypatch.setenv("BRAINTRUST_APP_URL", served_plane.url)
    monkeypatch.setenv("BRAINTRUST_API_KEY", served_plane.api_key)
    monkeypatch.delenv("BRAINTRUST_API_URL", raising=False)
    monkeypatch.delenv("BRAINTRUST_ORG_NAME", raising=False)
    braintrust.login(app_url=served_plane.url, api_key=served_plane.api_key, force_login=True)
    return served_plane


def _spans(plane: ServedPlane, project_id: str) -> list[dict]:
    with plane.client() as http:
        response = http.post("/btql", json={"query": f"SELECT * FROM project_logs('{project_id}') LIMIT 1000"})
        response.raise_for_status()
        return response.json()["data"]


def test_logger_spans_feedback_and_comments(sdk: ServedPlane) -> None:
    project = f"sdk-logs-{uuid.uuid4().hex[:6]}"
    logger = braintrust.init_logger(project=project)
    logged_id = logger.log(input={"q": "hi"}, output="hello", scores={"ok": 1}, metadata={"flagged": True}, tags=["a"])
    with logger.start_span(name="request", type="task", input={"question": "refund?"}) as root:
        with root.start_span(name="chat", type="llm", input=[{"role": "user", "content": "refund?"}]) as child:
            child.log(output={"content": "sure"}, metrics={"tokens": 12})
        root.log(output={"answer": "sure"})
        root_id = root.id
    logger.flush()
    logger.log_feedback(id=root_id, scores={"correctness": 0.25}, comment="wrong policy", metadata={"reviewer": "ann"})
    logger.flush()

    project_id = logger.project.id
    rows = {r["id"]: r for r in _spans(sdk, project_id)}
    assert logged_id in rows and root_id in rows
    assert rows[logged_id]["metadata"] == {"flagged": True}
    assert rows[logged_id]["tags"] == ["a"]
    root = rows[root_id]
    children = [r for r in rows.values() if r["root_span_id"] == root["root_span_id"] and r["id"] != root_id]
    assert root["is_root"] is True and len(children) == 1
    child = children[0]
    assert child["is_root"] is False and child["span_parents"] == [root["span_id"]]
    assert child["span_attributes"]["type"] == "llm" and child["metrics"]["tokens"] == 12
    # Streaming spans arrive as a row and a merge row: the plane must join start and end.
    assert {"start", "end"} <= set(root["metrics"]) and root["output"] == {"answer": "sure"}
    # feedback metadata is audit metadata in Braintrust, not the row's metadata
    assert root["scores"]["correctness"] == 0.25 and "metadata" not in root
    assert [c["comment"]["text"] for c in root["comments"]] == ["wrong policy"]
    assert len(rows) == 3  # the comment folded into its span instead of becoming a row


def test_dataset_insert_update_delete_iterate_and_pinned_version(sdk: ServedPlane) -> None:
    project = f"sdk-ds-{uuid.uuid4().hex[:6]}"
    dataset = braintrust.init_dataset(project=project, name="golden", description="d", metadata={"owner": "qa"})
    dataset.insert(id="r1", input={"q": 1}, expected="one", tags=["x"])
    dataset.insert(id="r2", input={"q": 2}, expected="two", metadata={"k": "v"})
    dataset.insert(id="r3", input={"q": 3})
    dataset.flush()
    first = {r["id"]: r for r in dataset}
    assert set(first) == {"r1", "r2", "r3"}
    assert first["r3"]["expected"] is None and first["r1"]["tags"] == ["x"]
    version_one = dataset.version
    assert version_one is not None and len(str(version_one)) == 19

    dataset.update(id="r1", expected="ONE", tags=["y"])
    dataset.delete("r2")
    dataset.flush()

    again = braintrust.init_dataset(project=project, name="golden")
    head = {r["id"]: r for r in again}
    assert set(head) == {"r1", "r3"}
    assert head["r1"]["expected"] == "ONE" and set(head["r1"]["tags"]) == {"x", "y"}  # tags are set-unioned
    assert head["r1"]["input"] == {"q": 1}  # update merges, it does not replace
    assert int(again.version) > int(version_one)

    pinned = braintrust.init_dataset(project=project, name="golden", version=version_one)
    old = {r["id"]: r for r in pinned}
    assert set(old) == {"r1", "r2", "r3"} and old["r1"]["expected"] == "one"


def test_reading_a_filtered_dataset(sdk: ServedPlane) -> None:
    project = f"sdk-filter-{uuid.uuid4().hex[:6]}"
    dataset = braintrust.init_dataset(project=project, name="mixed")
    for i in range(30):
        dataset.insert(id=f"row-{i}", input={"i": i}, expected=i % 3 == 0, metadata={"bucket": i % 3})
    dataset.flush()
    filtered = braintrust.init_dataset(project=project, name="mixed", _internal_btql={"filter": {"btql": "metadata.bucket = 0"}})
    ids = sorted(r["id"] for r in filtered)
    assert ids == sorted(f"row-{i}" for i in range(30) if i % 3 == 0)
