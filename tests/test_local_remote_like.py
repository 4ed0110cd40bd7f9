"""The remote-like plane (`local serve --latency-ms N --btql-rate-limit R`): every response is
delayed, BTQL above the limit is a 429 with Retry-After, and our client waits it out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import start_plane, stop_plane
from pipelines_repo.cli.main import main
from pipelines_repo.client import BraintrustClient, RetryPolicy
from pipelines_repo.local.remote_like import RemoteLike, SlidingWindow
from pipelines_repo.settings import ApiSettings


def logs_query(project_id: str) -> dict:
    return {"select": [{"op": "star"}], "limit": 10,
            "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                     "args": [{"op": "literal", "value": project_id}], "shape": "spans"}}


def test_sliding_window_admits_limit_then_frees_a_slot_as_the_oldest_ages_out() -> None:
    now = [0.0]
    window = SlidingWindow(2, 60.0, clock=lambda: now[0])
    assert window.admit() is None
    now[0] = 10.0
    assert window.admit() is None
    now[0] = 20.0
    assert window.admit() == pytest.approx(40.0)  # the slot taken at 0 frees at 60
    now[0] = 60.0
    assert window.admit() is None  # a refused request took no slot
    assert window.admit() == pytest.approx(10.0)


def test_settings_are_checked(capsys: pytest.CaptureFixture) -> None:
    assert not RemoteLike().active and RemoteLike(latency_ms=1).active and RemoteLike(btql_rate_limit=5).active
    with pytest.raises(ValueError):
        RemoteLike(latency_ms=-1)
    assert main(["local", "serve", "--btql-rate-limit", "0"]) == 2
    assert "--btql-rate-limit must be at least 1" in capsys.readouterr().err


def test_latency_delays_every_response_but_local_routes(tmp_path: Path) -> None:
    plane = start_plane(tmp_path / "slow.db", extra_args=["--latency-ms", "100"])
    try:
        with plane.client() as http:
            for method, path in (("GET", "/version"), ("GET", "/v1/project"), ("POST", "/btql")):
                t0 = time.perf_counter()
                response = http.request(method, path, json={"query": "select 1"} if method == "POST" else None)
                assert time.perf_counter() - t0 >= 0.1, path
                assert response.status_code in (200, 400), (path, response.text)
            # The stats route the benchmarks read is exempt, and the requests above were counted.
            t0 = time.perf_counter()
            stats = http.get("/local/stats")
            assert time.perf_counter() - t0 < 0.1
            assert stats.json()["requests"]["GET /version"] >= 1
    finally:
        stop_plane(plane)


def test_btql_rate_limit_answers_429_and_our_client_waits_it_out(tmp_path: Path) -> None:
    plane = start_plane(tmp_path / "limited.db", extra_args=["--btql-rate-limit", "3", "--btql-rate-window-s", "2"])
    try:
        with plane.client() as http:
            project_id = http.post("/v1/project", json={"name": "p"}).json()["id"]
            for _ in range(3):
                assert http.post("/btql", json={"query": logs_query(project_id)}).status_code == 200
            refused = http.post("/btql", json={"query": logs_query(project_id)})
            assert refused.status_code == 429
            assert refused.headers["retry-after"] in ("1", "2")
            assert "BTQL rate limit" in refused.json()["message"]
            # Only BTQL is limited.
            assert http.get("/v1/project").status_code == 200

        retry = RetryPolicy(max_attempts=5, budget=10)
        with BraintrustClient(ApiSettings(api_key=plane.api_key, app_url=plane.url), retry=retry) as client:
            t0 = time.perf_counter()
            page = client.btql(logs_query(project_id))
            waited = time.perf_counter() - t0
            assert page["data"] == []
            assert client.stats.retries >= 1
            assert waited >= 1.0  # at least the Retry-After it was told
    finally:
        stop_plane(plane)


def test_without_the_flags_nothing_is_limited(served_plane) -> None:
    with served_plane.client() as http:
        project_id = http.post("/v1/project", json={"name": "unlimited"}).json()["id"]
        statuses = {http.post("/btql", json={"query": logs_query(project_id)}).status_code for _ in range(25)}
        assert statuses == {200}
