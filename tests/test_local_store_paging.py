"""Paging filtered time windows: exact results in key order, one index seek per page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipelines_repo.local.query import parse_query
from pipelines_repo.local.store import LocalStore

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path) -> tuple[LocalStore, str]:
    store = LocalStore(tmp_path / "plane.db")
    project = store.create_project("paging")
    rows = [
        {"id": f"s{i:04d}", "project_id": project["id"], "log_id": "g",
         "created": (START + timedelta(hours=i)).isoformat(), "metadata": {"flagged": i % 3 == 0}}
        for i in range(24 * 30)  # hourly spans over 30 days, written out of time order
    ]
    for batch in (rows[300:], rows[:300]):
        store.write_rows(batch)
    return store, project["id"]


def page_all(store: LocalStore, project_id: str, filter_text: str, limit: int = 50) -> tuple[list[dict], int]:
    import json

    found, cursor, pages = [], None, 0
    while True:
        query = {"select": [{"op": "star"}], "limit": limit, "cursor": cursor, "filter": {"btql": filter_text},
                 "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": project_id}]}}
        page = store.query(parse_query(query, now=NOW))
        pages += 1
        found += [json.loads(r) for r in page.rows]
        cursor = page.cursor
        if not cursor:
            return found, pages


@pytest.mark.parametrize("days", [1, 7, 30])
def test_a_filtered_window_pages_exactly_its_rows_newest_first(store, days) -> None:
    plane, project_id = store
    lo = START + timedelta(days=3)
    hi = lo + timedelta(days=days)
    text = f"created >= '{lo.isoformat()}' AND created < '{hi.isoformat()}' AND metadata.flagged = true"
    rows, pages = page_all(plane, project_id, text)
    expected = [f"s{i:04d}" for i in range(24 * 30) if i % 3 == 0 and lo <= START + timedelta(hours=i) < hi]
    assert [r["id"] for r in rows] == sorted(expected, reverse=True)
    keys = [r["_pagination_key"] for r in rows]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    assert pages == len(expected) // 50 + 1


def test_the_pagination_index_serves_bounded_windows(store) -> None:
    plane, project_id = store
    text = "created >= '2026-01-05' AND created < '2026-01-06' AND metadata.flagged = true"
    parsed = parse_query({"from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                                   "args": [{"op": "literal", "value": project_id}]}, "filter": {"btql": text}}, now=NOW)
    obj, _ = plane.resolve_source(parsed)
    plan = plane._conn().execute(
        f"EXPLAIN QUERY PLAN SELECT r.id FROM rows r INDEXED BY rows_head_page WHERE r.obj = {obj} AND r.head = 1"
        " AND r.pagination_key >= ? AND r.pagination_key < ? ORDER BY r.pagination_key DESC LIMIT 10",
        ["p20260105", "p20260106~"],
    ).fetchall()
    assert "rows_head_page (obj=? AND pagination_key>? AND pagination_key<?)" in plan[0][3]
    assert "TEMP B-TREE" not in " ".join(p[3] for p in plan)


def test_a_replace_that_moves_created_moves_the_row_between_windows(store) -> None:
    plane, project_id = store
    plane.write_rows([{"id": "s0000", "project_id": project_id, "log_id": "g", "created": "2026-01-20T05:00:00Z",
                       "metadata": {"flagged": True}}])
    day_1, _ = page_all(plane, project_id, "created >= '2026-01-01' AND created < '2026-01-02'")
    day_20, _ = page_all(plane, project_id, "created >= '2026-01-20' AND created < '2026-01-21'")
    assert "s0000" not in {r["id"] for r in day_1} and "s0000" in {r["id"] for r in day_20}


def test_each_page_of_a_window_costs_the_same_wherever_it_starts(store) -> None:
    """A page seeks to its cursor: the work of the last page of a window is that of the first,
    not the work of every row above it (counted in SQLite VM steps, not timed)."""
    plane, project_id = store
    conn = plane._conn()
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        text = "created >= '2026-01-02' AND created < '2026-01-29' AND metadata.flagged = true"
        costs, cursor = [], None
        while True:
            steps[0] = 0
            query = {"select": [{"op": "star"}], "limit": 20, "cursor": cursor, "filter": {"btql": text},
                     "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                              "args": [{"op": "literal", "value": project_id}]}}
            page = plane.query(parse_query(query, now=NOW))
            costs.append(steps[0])
            cursor = page.cursor
            if not cursor:
                break
    finally:
        conn.set_progress_handler(None, 0)
    full = costs[:-1]  # the last page may be short
    assert len(full) >= 8
    assert max(full) <= 1.5 * min(full), costs


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_a_window_pages_in_either_direction_from_its_cursor(store, direction) -> None:
    import json

    plane, project_id = store
    text = "created >= '2026-01-03' AND created < '2026-01-09'"
    found, cursor = [], None
    while True:
        query = {"select": [{"op": "star"}], "limit": 7, "cursor": cursor, "filter": {"btql": text},
                 "sort": [{"expr": {"op": "ident", "name": ["_pagination_key"]}, "dir": direction}],
                 "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                          "args": [{"op": "literal", "value": project_id}]}}
        page = plane.query(parse_query(query, now=NOW))
        found += [json.loads(r)["id"] for r in page.rows]
        cursor = page.cursor
        if not cursor:
            break
    expected = [f"s{i:04d}" for i in range(24 * 2, 24 * 8)]
    assert found == (expected if direction == "asc" else expected[::-1])


@pytest.mark.parametrize("field", ["root_span_id", "id"])
def test_rows_named_by_key_are_found_through_the_key_index_however_big_the_object(tmp_path, field) -> None:
    """A trace fetch (`root_span_id IN (...)`) or a lookup by id costs the same in a project of
    500 spans as in one of 5,000 (SQLite VM steps, not timed), and still comes newest first."""
    import json

    store = LocalStore(tmp_path / "plane.db")
    project = store.create_project("keyed")
    wanted = ["t0001", "t0002", "t0003"]

    def spans(lo: int, hi: int) -> list[dict]:
        return [{"id": f"t{i:04d}", "root_span_id": f"t{i:04d}", "project_id": project["id"], "log_id": "g",
                 "created": (START + timedelta(minutes=i)).isoformat()} for i in range(lo, hi)]

    def cost() -> tuple[int, list[str]]:
        conn = store._conn()
        steps = [0]

        def count() -> int:
            steps[0] += 1
            return 0

        query = {"select": [{"op": "star"}], "limit": 100,
                 "filter": {"op": "in", "left": {"op": "ident", "name": [field]}, "right": {"op": "literal", "value": wanted}},
                 "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]},
                          "args": [{"op": "literal", "value": project["id"]}]}}
        conn.set_progress_handler(count, 50)
        try:
            page = store.query(parse_query(query, now=NOW))
        finally:
            conn.set_progress_handler(None, 0)
        return steps[0], [json.loads(r)["id"] for r in page.rows]

    store.write_rows(spans(0, 500))
    small, found = cost()
    assert found == wanted[::-1]
    for lo in range(500, 5000, 1000):
        store.write_rows(spans(lo, min(lo + 1000, 5000)))
    big, found = cost()
    assert found == wanted[::-1]
    assert big <= 2 * small + 5, (small, big)
