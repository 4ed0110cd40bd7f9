"""The local plane's REST surface: Braintrust's shapes, semantics and errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import ServedPlane



def _nullable_to_json_schema(node):
    """OpenAPI 3.0 writes `nullable: true`; JSON Schema spells it as a "null" type."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable_to_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


# The routes and schemas these tests use, cut from Braintrust's published OpenAPI spec into
# tests/data/braintrust-openapi-subset.json, so the suite needs nothing outside the repo.
SPEC = _nullable_to_json_schema(json.loads((Path(__file__).parent / "data" / "braintrust-openapi-subset.json").read_text()))


def _validate(instance: dict, path: str, method: str) -> None:
    """Validate a response body against the spec's 200 schema for that route."""
    schema = SPEC["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    resolver_schema = {"components": SPEC["components"], **schema}
    jsonschema.validate(instance, resolver_schema, cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def http(served_plane: ServedPlane):
    with served_plane.client() as client:
        yield client


@pytest.fixture(scope="module")
def project(http) -> dict:
    return http.post("/v1/project", json={"name": "api-tests"}).json()


@pytest.fixture(scope="module")
def dataset(http, project) -> dict:
    return http.post("/v1/dataset", json={"project_id": project["id"], "name": "api-ds", "metadata": {"a": {"b": 1}}}).json()


def test_v1_responses_match_braintrust_openapi(http, project, dataset) -> None:
    _validate(project, "/v1/project", "post")
    _validate(http.get("/v1/project", params={"project_name": "api-tests"}).json(), "/v1/project", "get")
    _validate(http.get(f"/v1/project/{project['id']}").json(), "/v1/project/{project_id}", "get")
    _validate(dataset, "/v1/dataset", "post")
    _validate(http.get("/v1/dataset", params={"project_id": project["id"]}).json(), "/v1/dataset", "get")
    _validate(http.get(f"/v1/dataset/{dataset['id']}").json(), "/v1/dataset/{dataset_id}", "get")
    inserted = http.post(f"/v1/dataset/{dataset['id']}/insert", json={"events": [{"id": "e1", "input": 1, "tags": ["t"]}]}).json()
    _validate(inserted, "/v1/dataset/{dataset_id}/insert", "post")
    fetched = http.post(f"/v1/dataset/{dataset['id']}/fetch", json={"limit": 10}).json()
    _validate(fetched, "/v1/dataset/{dataset_id}/fetch", "post")
    _validate(http.get(f"/v1/dataset/{dataset['id']}/fetch", params={"limit": 10}).json(), "/v1/dataset/{dataset_id}/fetch", "get")
    _validate(http.get(f"/v1/dataset/{dataset['id']}/summarize").json(), "/v1/dataset/{dataset_id}/summarize", "get")
    _validate(http.post(f"/v1/dataset/{dataset['id']}/feedback", json={"feedback": [{"id": "e1", "comment": "ok"}]}).json(),
              "/v1/dataset/{dataset_id}/feedback", "post")
    logs = http.post(f"/v1/project_logs/{project['id']}/insert", json={"events": [{"id": "s1", "input": "x", "scores": {"a": 0.5}}]}).json()
    _validate(logs, "/v1/project_logs/{project_id}/insert", "post")
    _validate(http.post(f"/v1/project_logs/{project['id']}/fetch", json={"limit": 5}).json(), "/v1/project_logs/{project_id}/fetch", "post")
    _validate(http.post(f"/v1/project_logs/{project['id']}/feedback", json={"feedback": [{"id": "s1", "scores": {"b": 1}}]}).json(),
              "/v1/project_logs/{project_id}/feedback", "post")
    patched = http.patch(f"/v1/dataset/{dataset['id']}", json={"metadata": {"a": {"c": 2}}, "description": "new"}).json()
    _validate(patched, "/v1/dataset/{dataset_id}", "patch")
    assert patched["metadata"] == {"a": {"b": 1, "c": 2}} and patched["description"] == "new"


def test_create_is_create_or_get_and_answers_200(http, project) -> None:
    again = http.post("/v1/project", json={"name": "api-tests", "description": "ignored"})
    assert again.status_code == 200 and again.json()["id"] == project["id"]
    first = http.post("/v1/dataset", json={"project_id": project["id"], "name": "twice"})
    second = http.post("/v1/dataset", json={"project_id": project["id"], "name": "twice"})
    assert first.status_code == second.status_code == 200 and first.json()["id"] == second.json()["id"]


def test_login_points_back_at_the_plane(http, served_plane) -> None:
    org = http.post("/api/apikey/login").json()["org_info"][0]
    assert org["api_url"] == served_plane.url and org["id"] and org["name"]
    assert http.get("/version").json()["logs3_payload_max_bytes"] is None


def test_fetch_pages_by_cursor_and_pins_versions(http, project) -> None:
    ds = http.post("/v1/dataset", json={"project_id": project["id"], "name": "paging"}).json()
    http.post(f"/v1/dataset/{ds['id']}/insert", json={"events": [{"id": f"r{i}", "input": i} for i in range(25)]})
    v1 = max(int(e["_xact_id"]) for e in http.post(f"/v1/dataset/{ds['id']}/fetch", json={}).json()["events"])
    http.post(f"/v1/dataset/{ds['id']}/insert", json={"events": [{"id": "r0", "input": "changed"}, {"id": "r1", "_object_delete": True}]})
    seen, cursor, pages = [], None, 0
    while True:
        body = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = http.post(f"/v1/dataset/{ds['id']}/fetch", json=body).json()
        pages += 1
        seen += page["events"]
        cursor = page.get("cursor")
        if not cursor:
            assert page["events"] or pages > 1
            break
    assert len(seen) == 24 and len({e["id"] for e in seen}) == 24
    assert all("expected" in e for e in seen)
    old = {e["id"]: e for e in http.post(f"/v1/dataset/{ds['id']}/fetch", json={"version": str(v1)}).json()["events"]}
    assert len(old) == 25 and old["r0"]["input"] == 0 and "r1" in old


def test_btql_sql_pipe_and_json_forms_agree(http, project) -> None:
    pid = project["id"]
    http.post(f"/v1/project_logs/{pid}/insert", json={"events": [
        {"id": f"q{i}", "input": f"text {i}", "metadata": {"flagged": i % 2 == 0}, "tags": ["annotated"] if i < 3 else []}
        for i in range(6)
    ]})
    sql = http.post("/btql", json={"query": f"SELECT id FROM project_logs('{pid}') WHERE metadata.flagged = true AND id LIKE 'q%'"}).json()
    pipe = http.post("/btql", json={"query": f"select: id | from: project_logs('{pid}') spans | filter: metadata.flagged = true and id LIKE 'q%'"}).json()
    tree = http.post("/btql", json={"query": {
        "select": [{"alias": "id", "expr": {"op": "ident", "name": ["id"]}}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": pid}], "shape": "spans"},
        "filter": {"op": "and", "children": [{"btql": "metadata.flagged = true"}, {"btql": "id LIKE 'q%'"}]},
    }}).json()
    expected = {"q0", "q2", "q4"}
    for result in (sql, pipe, tree):
        assert {r["id"] for r in result["data"]} == expected and "schema" in result


def test_btql_jsonl_and_parquet_carry_the_cursor_in_a_header(http, project) -> None:
    import io

    import pyarrow.parquet as pq

    query = f"SELECT * FROM project_logs('{project['id']}') LIMIT 2"
    jsonl = http.post("/btql", json={"query": query, "fmt": "jsonl"})
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(lines) == 2 and jsonl.headers["x-bt-cursor"]
    parquet = http.post("/btql", json={"query": query, "fmt": "parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 2 and "id" in table.column_names and parquet.headers["x-bt-cursor"]


@pytest.mark.parametrize(
    "bad_filter",
    [
        "metadata.flagged = ",
        "foo(1) = 2",
        "1=1; DROP TABLE rows",
        "id = 'x' OR '1'='1' --",
        "id = 'unterminated",
        "id = 'x' /* comment */ OR 1=1; DELETE FROM objects",
        "input = 'a'); DROP TABLE rows; --",
    ],
)
def test_bad_filters_answer_400_and_change_nothing(http, project, served_plane, bad_filter) -> None:
    before = http.post("/btql", json={"query": f"SELECT id FROM project_logs('{project['id']}')"}).json()["data"]
    response = http.post("/btql", json={"query": {
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": project["id"]}]},
        "filter": {"btql": bad_filter},
    }})
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    after = http.post("/btql", json={"query": f"SELECT id FROM project_logs('{project['id']}')"}).json()["data"]
    assert after == before


def test_errors_are_json_with_a_message(http, served_plane) -> None:
    import httpx

    unknown = http.get("/v1/dataset/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404 and "not found" in unknown.json()["message"]
    bad_key = httpx.get(f"{served_plane.url}/v1/project", headers={"Authorization": "Bearer wrong"})
    assert bad_key.status_code == 401 and "API key" in bad_key.json()["message"]
    no_key = httpx.post(f"{served_plane.url}/btql", json={"query": "SELECT 1"})
    assert no_key.status_code == 401
    bad_json = http.post("/logs3", content=b"{not json")
    assert bad_json.status_code == 400 and "JSON" in bad_json.json()["message"]
    no_route = http.get("/v1/nothing-here")
    assert no_route.status_code == 404 and no_route.json()["message"]
    bad_version = http.post("/btql", json={"query": "SELECT * FROM dataset('x')", "version": "abc"})
    assert bad_version.status_code in (400, 404) and bad_version.json()["message"]


def test_local_stats_count_requests_by_route(http, project) -> None:
    before = http.get("/local/stats").json()["requests"].get("POST /btql", 0)
    for _ in range(3):
        http.post("/btql", json={"query": f"SELECT id FROM project_logs('{project['id']}') LIMIT 1"})
    stats = http.get("/local/stats").json()
    assert stats["requests"]["POST /btql"] == before + 3 and stats["total"] >= 3
