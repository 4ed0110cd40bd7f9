"""Tests for pipelines_repo.client and pipelines_repo.settings.

A ``FakeBraintrust`` behind ``httpx.MockTransport`` answers like Braintrust (shapes as in
docs/BT_COMPAT.md Part A) and injects faults. Retries sleep through an injected
``sleep`` that only records delays, so nothing here really waits.
"""

from __future__ import annotations

import json
import random
from email.utils import format_datetime
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from pipelines_repo.client import (
    AuthError,
    BadRequestError,
    BraintrustClient,
    BraintrustError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from pipelines_repo.settings import ApiSettings, dagster_home, local_db_path

KEY = "sk-TEST-very-secret-key-0123456789"
APP = "https://www.braintrust.dev"
API = "https://api.braintrust.dev"
ORG_ID = "00000000-0000-0000-0000-0000000000a1"


class FakeBraintrust:
    """Just enough of Braintrust's HTTP surface, with fault injection."""

    def __init__(self, *, key: str | None = KEY, orgs: list[dict] | None = None, logs3_max_rows: int | None = None,
                 logs3_max_bytes: int | None = None):
        self.key = key
        self.orgs = orgs if orgs is not None else [{"id": ORG_ID, "name": "acme", "api_url": API}]
        self.logs3_max_rows = logs3_max_rows
        self.logs3_max_bytes = logs3_max_bytes
        self.requests: list[httpx.Request] = []
        self.faults: dict[tuple[str, str], list] = {}
        self.projects: dict[str, dict] = {}
        self.datasets: dict[str, dict] = {}
        self.dataset_rows: dict[str, list[dict]] = {}
        self.logs3_batches: list[list[dict]] = []
        self.btql_pages: list[list[dict]] = []
        self.btql_bodies: list[dict] = []

    # fault injection: responses (or exceptions) returned before the real handler runs
    def fail(self, method: str, path: str, *outcomes) -> None:
        self.faults.setdefault((method, path), []).extend(outcomes)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queued = self.faults.get((request.method, request.url.path))
        if queued:
            outcome = queued.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        if self.key is not None and request.headers.get("authorization") != f"Bearer {self.key}":
            return httpx.Response(401, json={"message": "Invalid API key"})
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        host = request.url.host

        if path == "/api/apikey/login":
            assert host == "www.braintrust.dev"
            return httpx.Response(200, json={"org_info": self.orgs})
        assert host == "api.braintrust.dev", f"data-plane request went to {host}"
        if path == "/v1/project" and request.method == "POST":
            name = body["name"]
            project = self.projects.setdefault(
                name, {"id": f"proj-{len(self.projects) + 1}", "org_id": ORG_ID, "name": name}
            )
            return httpx.Response(200, json=project)
        if path == "/v1/project" and request.method == "GET":
            name = request.url.params.get("project_name")
            objs = [p for p in self.projects.values() if name is None or p["name"] == name]
            return httpx.Response(200, json={"objects": objs})
        if path.startswith("/v1/project/"):
            pid = path.rsplit("/", 1)[1]
            for p in self.projects.values():
                if p["id"] == pid:
                    return httpx.Response(200, json=p)
            return httpx.Response(404, json={"message": f"No project with id {pid}"})
        if path == "/v1/dataset" and request.method == "POST":
            key = (body["project_id"], body["name"])
            for d in self.datasets.values():
                if (d["project_id"], d["name"]) == key:
                    return httpx.Response(200, json=d)
            did = f"ds-{len(self.datasets) + 1}"
            self.datasets[did] = {"id": did, "project_id": body["project_id"], "name": body["name"],
                                  "url_slug": body["name"], "description": body.get("description"),
                                  "metadata": body.get("metadata")}
            return httpx.Response(200, json=self.datasets[did])
        if path == "/v1/dataset" and request.method == "GET":
            pid = request.url.params.get("project_id")
            name = request.url.params.get("dataset_name")
            objs = [d for d in self.datasets.values()
                    if d["project_id"] == pid and (name is None or d["name"] == name)]
            return httpx.Response(200, json={"objects": objs})
        if path.startswith("/v1/dataset/"):
            parts = path.split("/")
            did = parts[3]
            if did not in self.datasets:
                return httpx.Response(404, json={"message": f"Dataset {did} not found"})
            if len(parts) == 4:
                return httpx.Response(200, json=self.datasets[did])
            if parts[4] == "insert":
                self.dataset_rows.setdefault(did, []).extend(body["events"])
                return httpx.Response(200, json={"row_ids": [e["id"] for e in body["events"]]})
            if parts[4] == "fetch":
                rows = self.dataset_rows.get(did, [])
                start = int(body.get("cursor") or 0)
                page = rows[start:start + body["limit"]]
                end = start + len(page)
                out = {"events": page}
                if page and end < len(rows):
                    out["cursor"] = str(end)
                return httpx.Response(200, json=out)
        if path == "/logs3":
            rows = body["rows"]
            assert body["api_version"] == 2
            too_many = self.logs3_max_rows is not None and len(rows) > self.logs3_max_rows
            too_big = self.logs3_max_bytes is not None and len(request.content) > self.logs3_max_bytes
            if too_many or too_big:
                return httpx.Response(413, text="Request Too Long")
            self.logs3_batches.append(rows)
            return httpx.Response(200, json={})
        if path == "/btql":
            self.btql_bodies.append(body)
            query = body["query"]
            if isinstance(query, dict) and query.get("filter") == "bad":
                return httpx.Response(400, json={"message": "Filter error: unknown field 'bad'"})
            index = int(query.get("cursor") or 0) if isinstance(query, dict) else 0
            page = self.btql_pages[index] if index < len(self.btql_pages) else []
            limit = query.get("limit", 1000) if isinstance(query, dict) else 1000
            out = {"data": page[:limit], "schema": {}}
            if index + 1 < len(self.btql_pages):
                out["cursor"] = str(index + 1)
            else:
                out["cursor"] = ""
            return httpx.Response(200, json=out)
        return httpx.Response(404, json={"message": f"no route {request.method} {path}"})


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(fake: FakeBraintrust, *, settings: ApiSettings | None = None, retry: RetryPolicy | None = None,
                **kwargs) -> tuple[BraintrustClient, Sleeps]:
    sleeps = Sleeps()
    retry = retry or RetryPolicy(rng=random.Random(7), sleep=sleeps)
    settings = settings or ApiSettings(api_key=KEY)
    return BraintrustClient(settings, transport=fake.transport, retry=retry, **kwargs), sleeps


# -- settings -------------------------------------------------------------------------------


def test_settings_from_env_with_key_is_braintrust_plane():
    s = ApiSettings.from_env({
        "BRAINTRUST_API_KEY": KEY + "\n",
        "BRAINTRUST_API_URL": "https://api.example.com/",
        "BRAINTRUST_ORG_NAME": "acme",
    })
    assert s.plane == "braintrust"
    assert s.api_key == KEY  # trailing newline stripped, like the SDK
    assert s.api_url == "https://api.example.com"
    assert s.app_url == "https://www.braintrust.dev"
    assert s.org_name == "acme"
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in s.describe()


def test_settings_without_key_is_local_plane():
    s = ApiSettings.from_env({"BRAINTRUST_API_KEY": "", "BRAINTRUST_APP_URL": "http://127.0.0.1:8000"})
    assert s.plane == "local"
    assert s.api_key is None
    assert s.app_url == "http://127.0.0.1:8000"
    assert "local" in s.describe()


def test_dagster_home_and_local_db(tmp_path):
    repo = Path(__file__).resolve().parent.parent
    assert dagster_home({}) == repo / "dagster_home"
    assert (repo / "pyproject.toml").exists()
    assert local_db_path({}) == repo / "dagster_home" / "braintrust-local.db"
    assert dagster_home({"DAGSTER_HOME": str(tmp_path)}) == tmp_path
    assert local_db_path({"DAGSTER_HOME": str(tmp_path)}) == tmp_path / "braintrust-local.db"
    assert local_db_path({"DAGSTER_HOME": str(tmp_path), "BT_LOCAL_DB": str(tmp_path / "x.db")}) == tmp_path / "x.db"


# -- login ----------------------------------------------------------------------------------


def test_construction_makes_no_request():
    fake = FakeBraintrust()
    client, _ = make_client(fake)
    assert fake.requests == [] and client.stats.requests == 0
    assert KEY not in repr(client)


def test_login_picks_org_by_name_and_learns_api_url():
    fake = FakeBraintrust(orgs=[
        {"id": "o1", "name": "first", "api_url": "https://other.example"},
        {"id": "o2", "name": "acme", "api_url": API},
    ])
    client, _ = make_client(fake, settings=ApiSettings(api_key=KEY, org_name="acme"))
    org = client.login()
    assert org["id"] == "o2" and client.org_id == "o2" and client.org_name == "acme"
    assert client.api_url == API
    login = fake.requests[0]
    assert str(login.url) == f"{APP}/api/apikey/login"
    assert login.headers["authorization"] == f"Bearer {KEY}"
    client.ensure_project("p")
    assert fake.requests[-1].headers["x-bt-org-name"] == "acme"
    assert json.loads(fake.requests[-1].content) == {"name": "p", "org_name": "acme"}


def test_login_defaults_to_first_org_and_is_lazy():
    fake = FakeBraintrust(orgs=[{"id": "o1", "name": "first", "api_url": API}, {"id": "o2", "name": "second"}])
    client, _ = make_client(fake)
    client.ensure_project("p")
    assert fake.paths() == ["POST /api/apikey/login", "POST /v1/project"]
    assert client.org_name == "first"
    client.ensure_project("p")
    assert fake.paths().count("POST /api/apikey/login") == 1


def test_explicit_api_url_wins_over_login():
    fake = FakeBraintrust(orgs=[{"id": "o1", "name": "acme", "api_url": "https://elsewhere.example"}])
    client, _ = make_client(fake, settings=ApiSettings(api_key=KEY, api_url=API))
    client.ensure_project("p")
    assert fake.requests[-1].url.host == "api.braintrust.dev"


def test_login_unknown_org_lists_choices():
    fake = FakeBraintrust()
    client, _ = make_client(fake, settings=ApiSettings(api_key=KEY, org_name="nope"))
    with pytest.raises(AuthError) as info:
        client.login()
    assert "'nope'" in str(info.value) and "'acme'" in str(info.value) and "BRAINTRUST_ORG_NAME" in str(info.value)


def test_401_says_key_is_wrong_never_shows_it_and_is_not_retried():
    fake = FakeBraintrust(key="the-right-key")
    client, sleeps = make_client(fake)
    with pytest.raises(AuthError) as info:
        client.ensure_project("p")
    err = info.value
    assert err.status == 401 and err.endpoint == "POST /api/apikey/login"
    text = str(err)
    assert "API key is wrong" in text and "BRAINTRUST_API_KEY" in text and "local data plane" in text
    assert KEY not in text and KEY not in repr(err)
    assert len(fake.requests) == 1 and sleeps == []


def test_server_echoing_the_key_is_redacted():
    fake = FakeBraintrust()
    fake.fail("POST", "/api/apikey/login", httpx.Response(403, json={"message": f"key {KEY} has no access"}))
    client, _ = make_client(fake)
    with pytest.raises(AuthError) as info:
        client.login()
    assert KEY not in str(info.value) and KEY not in (info.value.server_message or "")
    assert "lacks access" in str(info.value)


# -- retries --------------------------------------------------------------------------------


def test_429_honours_retry_after_seconds():
    fake = FakeBraintrust()
    fake.fail("POST", "/v1/project", httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))
    client, sleeps = make_client(fake)
    assert client.ensure_project("p")["name"] == "p"
    assert sleeps == [7.0]
    assert client.stats.retries == 1
    assert client.stats.requests_by_endpoint["POST /v1/project"] == 2


def test_429_honours_retry_after_http_date():
    fake = FakeBraintrust()
    now = 1_800_000_000.0
    when = format_datetime(datetime.fromtimestamp(now + 12, tz=timezone.utc), usegmt=True)
    fake.fail("POST", "/btql", httpx.Response(429, headers={"Retry-After": when}))
    sleeps = Sleeps()
    client, _ = make_client(fake, retry=RetryPolicy(sleep=sleeps, wall_clock=lambda: now, rng=random.Random(1)))
    client.btql({"from": "x"})
    assert sleeps == [12.0]


def test_retry_after_beyond_budget_gives_up_at_once():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.Response(429, headers={"Retry-After": "3600"}, json={"message": "rate limited"}))
    client, sleeps = make_client(fake)
    with pytest.raises(RateLimitError) as info:
        client.btql({"from": "x"})
    assert sleeps == [] and info.value.retry_after == 3600
    assert "POST /btql" in str(info.value) and "3600" in str(info.value)


def test_500_then_success_backs_off_deterministically():
    def run() -> list[float]:
        fake = FakeBraintrust()
        fake.fail("POST", "/logs3", httpx.Response(500, text="boom"), httpx.Response(502, text="bad gateway"))
        client, sleeps = make_client(fake)
        client.insert_rows([{"id": "a", "dataset_id": "d"}])
        assert [r["id"] for b in fake.logs3_batches for r in b] == ["a"]
        return list(sleeps)

    first = run()
    assert first == run()  # same seed, same delays
    assert len(first) == 2
    assert 0.24 <= first[0] <= 0.36 and 0.48 <= first[1] <= 0.72


def test_500_exhausted_raises_server_error():
    fake = FakeBraintrust()
    fake.fail("GET", "/v1/dataset/ds-9", *[httpx.Response(503, json={"message": "down"}) for _ in range(5)])
    client, sleeps = make_client(fake)
    with pytest.raises(ServerError) as info:
        client.get_dataset("ds-9")
    assert info.value.status == 503 and "5 attempts" in str(info.value) and "GET /v1/dataset/ds-9" in str(info.value)
    assert len(sleeps) == 4 and client.stats.retries == 4


def test_timeout_then_success():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.ReadTimeout("timed out"), httpx.ConnectError("refused"))
    fake.btql_pages = [[{"id": "r1"}]]
    client, sleeps = make_client(fake)
    assert client.btql({"from": "x"})["data"] == [{"id": "r1"}]
    assert len(sleeps) == 2
    assert client.stats.requests_by_endpoint["POST /btql"] == 3


def test_timeouts_exhausted_raise_transport_error():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", *[httpx.ReadTimeout("timed out") for _ in range(5)])
    client, sleeps = make_client(fake)
    with pytest.raises(TransportError) as info:
        client.btql({"from": "x"})
    text = str(info.value)
    assert "POST /btql" in text and "ReadTimeout" in text and "5 attempts" in text and "api.braintrust.dev" in text
    assert len(sleeps) == 4


def test_non_retryable_transport_error_fails_fast():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.UnsupportedProtocol("nope"))
    client, sleeps = make_client(fake)
    with pytest.raises(TransportError):
        client.btql({"from": "x"})
    assert sleeps == []


def test_retry_budget_stops_retries():
    clock = {"t": 0.0}

    def sleep(s: float) -> None:
        clock["t"] += s

    fake = FakeBraintrust()
    fake.fail("POST", "/btql", *[httpx.Response(503) for _ in range(5)])
    policy = RetryPolicy(base_delay=4, max_delay=8, jitter=0, budget=10, sleep=sleep, clock=lambda: clock["t"])
    client, _ = make_client(fake, retry=policy)
    with pytest.raises(ServerError):
        client.btql({"from": "x"})
    assert clock["t"] == 4.0  # 4 s, then 8 s would exceed the 10 s budget
    assert client.stats.requests_by_endpoint["POST /btql"] == 2


def test_retry_policy_units():
    p = RetryPolicy(jitter=0)
    assert [p.backoff(n) for n in range(1, 8)] == [0.3, 0.6, 1.2, 2.4, 4.8, 8.0, 8.0]
    j = RetryPolicy(rng=random.Random(3))
    assert all(0.24 <= j.backoff(1) <= 0.36 for _ in range(50))
    assert all(j.backoff(10) <= 8.0 for _ in range(50))
    assert p.parse_retry_after("2.5") == 2.5
    assert p.parse_retry_after("garbage") is None and p.parse_retry_after(None) is None
    assert p.parse_retry_after("-3") == 0.0
    assert {408, 429, 500, 502, 503, 504} == set(p.retry_statuses)
    assert not p.is_retryable_status(401) and not p.is_retryable_status(413)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# -- /logs3 ---------------------------------------------------------------------------------


def test_insert_rows_413_halves_and_keeps_order():
    fake = FakeBraintrust(logs3_max_rows=300)
    client, _ = make_client(fake)
    rows = [{"id": f"r{i}", "dataset_id": "ds-1", "input": i} for i in range(2500)]
    client.insert_rows(iter(rows))
    received = [r["id"] for batch in fake.logs3_batches for r in batch]
    assert received == [r["id"] for r in rows]  # all exactly once, in order
    assert all(len(b) <= 300 for b in fake.logs3_batches)
    assert client.stats.rows_sent == 2500
    # 1000-row batches were sent first: the very first /logs3 body had exactly 1000 rows
    first_logs3 = next(r for r in fake.requests if r.url.path == "/logs3")
    assert len(json.loads(first_logs3.content)["rows"]) == 1000


def test_insert_rows_single_row_too_large_names_it():
    fake = FakeBraintrust(logs3_max_bytes=2000)
    client, _ = make_client(fake)
    rows = [{"id": "ok-1", "dataset_id": "d"}, {"id": "huge", "dataset_id": "d", "input": "x" * 5000},
            {"id": "ok-2", "dataset_id": "d"}]
    with pytest.raises(PayloadTooLargeError) as info:
        client.insert_rows(rows)
    text = str(info.value)
    assert "'huge'" in text and f"{len(json.dumps(rows[1], separators=(',', ':')))} bytes" in text
    assert info.value.status == 413 and info.value.endpoint == "POST /logs3"
    assert [r["id"] for b in fake.logs3_batches for r in b] == ["ok-1"]  # rows before it were written


def test_insert_rows_batches_by_bytes_and_rows():
    fake = FakeBraintrust()
    client, _ = make_client(fake, max_rows=10, max_bytes=4096)
    rows = [{"id": f"r{i}", "dataset_id": "d", "input": "y" * 500} for i in range(25)]
    client.insert_rows(rows)
    sizes = [len(r.content) for r in fake.requests if r.url.path == "/logs3"]
    assert all(s <= 4096 for s in sizes)
    assert [r["id"] for b in fake.logs3_batches for r in b] == [r["id"] for r in rows]
    assert client.stats.bytes_sent >= sum(sizes)


def test_insert_rows_row_shape():
    fake = FakeBraintrust()
    client, _ = make_client(fake)
    client.insert_rows([{"dataset_id": "d", "input": 1}, {"id": "s", "project_id": "p", "log_id": "g"}])
    body = json.loads(next(r for r in fake.requests if r.url.path == "/logs3").content)
    assert body["api_version"] == 2 and body["rows"][0]["id"]  # id filled in
    with pytest.raises(ValueError, match="names no target object"):
        client.insert_rows([{"id": "x", "input": 1}])
    with pytest.raises(ValueError, match="log_id"):
        client.insert_rows([{"id": "x", "project_id": "p"}])
    with pytest.raises(ValueError, match="'bad'"):
        client.insert_rows([{"id": "bad", "dataset_id": "d", "input": float("nan")}])


# -- /btql ----------------------------------------------------------------------------------


def test_btql_pages_follow_cursor_until_empty():
    fake = FakeBraintrust()
    fake.btql_pages = [[{"id": 1}, {"id": 2}], [{"id": 3}], [{"id": 4}]]
    client, _ = make_client(fake)
    query = {"select": [{"op": "star"}], "from": {"op": "function"}}
    pages = list(client.iter_btql_pages(query, page_size=5000, query_source="test"))
    assert pages == [[{"id": 1}, {"id": 2}], [{"id": 3}], [{"id": 4}]]
    assert [b["query"].get("cursor") for b in fake.btql_bodies] == [None, "1", "2"]
    assert all(b["query"]["limit"] == 1000 for b in fake.btql_bodies)  # capped
    assert all(b["fmt"] == "json" and b["query_source"] == "test" for b in fake.btql_bodies)
    assert "limit" not in query and "cursor" not in query  # caller's dict untouched
    assert fake.requests[-1].headers["x-bt-org-name"] == "acme"


def test_btql_pages_stop_on_missing_cursor_and_max_rows():
    fake = FakeBraintrust()
    fake.btql_pages = [[{"id": i} for i in range(3)], [{"id": i} for i in range(3, 6)], [{"id": 9}]]
    client, _ = make_client(fake)
    pages = list(client.iter_btql_pages({"from": "x"}, page_size=3, max_rows=4))
    assert [len(p) for p in pages] == [3, 1]
    assert [b["query"]["limit"] for b in fake.btql_bodies] == [3, 1]


def test_btql_empty_first_page_yields_nothing():
    fake = FakeBraintrust()
    client, _ = make_client(fake)
    assert list(client.iter_btql_pages({"from": "x"})) == []
    assert len(fake.btql_bodies) == 1


def test_btql_repeated_cursor_is_an_error():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", *[httpx.Response(200, json={"data": [{"id": 1}], "cursor": "same"}) for _ in range(3)])
    client, _ = make_client(fake)
    with pytest.raises(BraintrustError, match="same cursor"):
        list(client.iter_btql_pages({"from": "x"}))


def test_btql_400_carries_server_message():
    fake = FakeBraintrust()
    client, sleeps = make_client(fake)
    with pytest.raises(BadRequestError) as info:
        client.btql({"from": "x", "filter": "bad"})
    assert "Filter error: unknown field 'bad'" in str(info.value)
    assert info.value.server_message == "Filter error: unknown field 'bad'"
    assert info.value.endpoint == "POST /btql" and sleeps == []


def test_btql_sql_string_and_header_cursor():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.Response(200, json={"data": [{"n": 1}]}, headers={"x-bt-cursor": "abc"}))
    client, _ = make_client(fake)
    out = client.btql("SELECT 1", use_columnstore=False)
    assert out["cursor"] == "abc"
    sent = json.loads(fake.requests[-1].content)
    assert sent == {"query": "SELECT 1", "fmt": "json", "use_columnstore": False}
    with pytest.raises(TypeError):
        list(client.iter_btql_pages("SELECT 1"))  # type: ignore[arg-type]


def test_btql_jsonl_and_bytes():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.Response(200, content=b'{"a":1}\n{"a":2}\n', headers={"x-bt-cursor": "c2"}))
    fake.fail("POST", "/btql", httpx.Response(200, content=b"PAR1...", headers={"x-bt-cursor": "c3"}))
    client, _ = make_client(fake)
    assert client.btql({"from": "x"}, fmt="jsonl") == {"data": [{"a": 1}, {"a": 2}], "cursor": "c2"}
    assert client.btql_bytes({"from": "x"}, fmt="parquet") == (b"PAR1...", "c3")
    with pytest.raises(ValueError):
        client.btql({"from": "x"}, fmt="parquet")


# -- projects and datasets ------------------------------------------------------------------


def test_projects_and_datasets_roundtrip():
    fake = FakeBraintrust()
    client, _ = make_client(fake)
    assert client.get_project("support") is None
    project = client.ensure_project("support")
    assert client.ensure_project("support") == project  # create-or-get
    assert client.get_project("support") == project
    assert client.get_project(id=project["id"]) == project
    assert client.get_project(id="missing") is None
    with pytest.raises(NotFoundError) as info:
        client.get_project_by_id("missing")
    assert "project id 'missing'" in str(info.value)

    assert client.find_dataset(project["id"], "gold") is None
    ds = client.ensure_dataset(project["id"], "gold", description="d", metadata={"k": 1})
    assert ds["description"] == "d" and ds["metadata"] == {"k": 1}
    assert client.find_dataset(project["id"], "gold") == ds
    assert client.get_dataset(ds["id"]) == ds
    with pytest.raises(NotFoundError) as info:
        client.get_dataset("nope")
    assert "dataset id 'nope'" in str(info.value) and info.value.status == 404


def test_insert_and_fetch_dataset_pages():
    fake = FakeBraintrust()
    client, _ = make_client(fake)
    ds = client.ensure_dataset(client.ensure_project("p")["id"], "d")
    ids = client.insert_dataset_events(ds["id"], [{"id": f"e{i}", "input": i} for i in range(5)] + [{"input": "x"}])
    assert ids[:5] == [f"e{i}" for i in range(5)] and len(ids) == 6 and ids[5]
    rows = list(client.fetch_dataset(ds["id"], page_size=2, version=123))
    assert [r["input"] for r in rows] == [0, 1, 2, 3, 4, "x"]
    fetches = [json.loads(r.content) for r in fake.requests if r.url.path.endswith("/fetch")]
    assert fetches[0] == {"limit": 2, "version": "123"}
    assert [f.get("cursor") for f in fetches] == [None, "2", "4"]
    assert client.stats.requests_by_endpoint["POST /v1/dataset/{id}/fetch"] == 3


def test_dataset_url_is_quoted():
    fake = FakeBraintrust(orgs=[{"id": "o", "name": "My Org", "api_url": API}])
    client, _ = make_client(fake)
    assert client.dataset_url("Support Bot", "gold/v1") == f"{APP}/app/My%20Org/p/Support%20Bot/datasets/gold%2Fv1"


# -- stats ----------------------------------------------------------------------------------


def test_stats_counts_requests_retries_and_bytes():
    fake = FakeBraintrust()
    fake.fail("POST", "/logs3", httpx.Response(503))
    client, _ = make_client(fake)
    before = client.stats.snapshot()
    client.ensure_project("p")
    client.insert_rows([{"id": "a", "dataset_id": "d"}])
    snap = client.stats.snapshot()
    assert snap["requests"] == 4 == len(fake.requests)
    assert snap["requests_by_endpoint"] == {"POST /api/apikey/login": 1, "POST /logs3": 2, "POST /v1/project": 1}
    assert snap["retries"] == 1 and snap["rows_sent"] == 1 and snap["errors"] == 0
    assert snap["bytes_sent"] == sum(len(r.content) for r in fake.requests)
    assert client.stats.since(before)["requests"] == 4
    json.dumps(snap)  # plain JSON for Dagster metadata
    client.stats.reset()
    assert client.stats.requests == 0


# -- local plane ----------------------------------------------------------------------------


def test_local_plane_uses_base_url_and_sends_no_key():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/apikey/login":
            return httpx.Response(200, json={"org_info": [
                {"id": "L", "name": "local", "api_url": "http://127.0.0.1:9"}]})
        return httpx.Response(200, json={"id": "p1", "name": "p", "org_id": "L"})

    settings = ApiSettings.from_env({})
    client = BraintrustClient(settings, transport=httpx.MockTransport(handler), base_url="http://braintrust.local")
    with client:
        client.ensure_project("p")
        assert client.api_url == client.app_url == "http://braintrust.local"
        assert "local" in client.describe()
    assert [str(r.url) for r in seen] == ["http://braintrust.local/api/apikey/login", "http://braintrust.local/v1/project"]
    assert all("authorization" not in r.headers for r in seen)
    assert seen[1].headers["x-bt-org-name"] == "local"


def test_local_plane_without_login_route_uses_synthetic_org():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/apikey/login":
            return httpx.Response(404, json={"message": "not found"})
        return httpx.Response(200, json={"objects": []})

    client = BraintrustClient(ApiSettings(), transport=httpx.MockTransport(handler))
    assert client.get_project("p") is None
    assert client.org_name == "local"


def test_local_plane_needs_somewhere_to_go():
    with pytest.raises(ValueError, match="local data plane"):
        BraintrustClient(ApiSettings())


def test_btql_303_redirect_is_fetched_without_credentials():
    fake = FakeBraintrust()
    fake.fail("POST", "/btql", httpx.Response(303, headers={"location": "https://bucket.example/r?sig=1",
                                                            "x-bt-cursor": "next"}))
    fake.fail("GET", "/r", httpx.Response(200, json={"data": [{"id": "big"}], "schema": {}}))
    client, _ = make_client(fake)
    assert client.btql({"from": "x"}) == {"data": [{"id": "big"}], "schema": {}, "cursor": "next"}
    signed = fake.requests[-1]
    assert signed.url.host == "bucket.example" and "authorization" not in signed.headers
    assert "x-bt-org-name" not in signed.headers
