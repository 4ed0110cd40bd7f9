"""Filters compile to SQLite that selects exactly the right rows (docs/ARCHITECTURE.md contract).

A real SQLite table with the `rows` schema holds twelve varied rows; every filter runs against it
as `SELECT r.id FROM rows AS r WHERE <compiled sql>` and must return exactly the expected ids.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timezone

import pytest

from helpers import ident, lit
from pipelines_repo.local.query import (
    CompiledFilter,
    QueryError,
    and_filters,
    compile_filter_text,
    compile_filter_tree,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

SCHEMA = """
CREATE TABLE objects(pk INTEGER PRIMARY KEY, kind TEXT, id TEXT UNIQUE, project_id TEXT,
                     name TEXT, description TEXT, metadata TEXT, created TEXT, deleted_at TEXT);
CREATE TABLE rows(seq INTEGER PRIMARY KEY, obj INTEGER, id TEXT, xact_id INTEGER, head INTEGER,
                  deleted INTEGER, created TEXT, root_span_id TEXT, span_id TEXT, is_root INTEGER,
                  pagination_key TEXT, data TEXT);
"""

# id, created, root_span_id, is_root, data
ROWS = [
    ("r01", "2026-02-28T10:00:00.000000Z", "t1", 1, {
        "input": "I want a refund please", "output": "Refund issued",
        "metadata": {"flagged": True, "user": {"id": "u1"}, "model": "gpt-4"},
        "scores": {"user_rating": 0.9, "correctness": 0.3, "Answer quality": 0.8},
        "comments": [{"text": "wrong amount"}], "tags": ["annotated", "refund"],
        "span_attributes": {"type": "llm", "name": "chat"}, "metrics": {"start": 100.0, "end": 101.5}}),
    ("r02", "2026-02-20T00:00:00.000000Z", "t1", 0, {
        "input": "What is the weather", "output": "Sunny",
        "metadata": {"flagged": False, "user": {"id": "u2"}},
        "scores": {"user_rating": 0.5, "correctness": 0.9}, "tags": ["value-added"],
        "span_attributes": {"type": "tool"}, "metrics": {"start": 10, "end": 15}}),
    ("r03", "2026-02-27T00:00:00.000000Z", "t1", 0, {
        "input": {"question": "REFUND status?"}, "output": {"answer": "Your refunds are pending"},
        "metadata": {"flagged": 1}, "scores": {"user_rating": 0.95}, "comments": [], "tags": [],
        "span_attributes": {"type": "task"}, "metrics": {"start": 50}}),
    ("r04", "2026-01-15T00:00:00.000000Z", "t4", 1, {
        "input": "refund?", "metadata": {}, "scores": {"correctness": 0.1, "user_rating": None},
        "comments": [{"text": "ok"}], "tags": None,
        "span_attributes": {"type": "llm", "purpose": "scorer"}, "metrics": {"start": 1, "end": 4}}),
    ("r05", "2025-12-31T23:59:59.000000Z", "t5", 1, {
        "input": "hello", "output": None, "metadata": {"flagged": "true"}, "tags": ["Annotated"],
        "span_attributes": {"type": "score"}}),
    ("r06", "2026-03-01T11:59:00.000000Z", "t4", 0, {
        "input": "Refunding later", "metadata": {"flagged": None}, "scores": {"Answer quality": 0.4},
        "tags": ["annotated", "x"], "span_attributes": {"type": "tool"}, "metrics": {"start": 0, "end": 0.5}}),
    ("r07", "2026-02-25T08:00:00.000000Z", "t7", 1, {
        "input": "nonrefundable", "scores": {"user_rating": 0.8}, "tags": ["annotated"]}),
    ("r08", "2026-02-23T12:00:00.000000Z", "t8", 1, {
        "input": "thanks", "output": "refund", "metadata": {"user": {"id": "u1"}, "thumbs_up": False},
        "tags": ["value"], "span_attributes": {"type": "function"}}),
    ("r09", "2026-02-22T12:00:00.000000Z", "t9", 1, {
        "input": "Order #123_45", "metadata": {"thumbs_up": True, "nested": {"list": [1, 2, 3]}},
        "tags": ["a", "b", "c"], "span_attributes": {"type": "llm", "purpose": "other"}}),
    ("r10", "2026-02-28T23:00:00.000000Z", "t10", 1, {
        "input": "100% sure", "comments": [{"text": "c"}], "scores": {"correctness": 0.49},
        "metadata": {"score_text": "0.9"}, "tags": ["value-added", "annotated"],
        "span_attributes": {"type": "tool"}}),
    ("r11", "2026-02-10T00:00:00.000000Z", "t11", 1, {
        "input": "ÉCOLE refund", "output": "Sure thing", "metadata": {"flagged": False, "model": "gpt-3.5"},
        "scores": {"user_rating": 0.81, "correctness": 0.6}, "span_attributes": {"type": "llm"}}),
    ("r12", "2026-03-01T00:00:00.000000Z", "t12", 1, {
        "input": "a_b", "metadata": {"weird key": "v", "it's": 1}, "tags": ["solo"]}),
]
XACT_BASE = 1000192656880881000  # r01 has XACT_BASE + 1, ..., r12 has XACT_BASE + 12
ALL = {row[0] for row in ROWS}


def ids(*names: str) -> set[str]:
    return set(names)


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO objects(pk, kind, id, name, created) VALUES (1, 'project', 'p1', 'demo', ?)",
                 ("2026-01-01T00:00:00.000000Z",))
    for i, (row_id, created, root, is_root, data) in enumerate(ROWS, start=1):
        conn.execute(
            "INSERT INTO rows(obj, id, xact_id, head, deleted, created, root_span_id, span_id, is_root,"
            " pagination_key, data) VALUES (1, ?, ?, 1, 0, ?, ?, ?, ?, ?, ?)",
            (row_id, XACT_BASE + i, created, root, f"s{i}", is_root, f"p{i:020d}", json.dumps(data)),
        )
    conn.commit()
    return conn


def run(conn: sqlite3.Connection, f: CompiledFilter) -> set[str]:
    cur = conn.execute(f"SELECT r.id FROM rows AS r WHERE {f.sql}", f.params)
    return {row[0] for row in cur.fetchall()}


def snapshot(conn: sqlite3.Connection) -> tuple:
    rows = conn.execute("SELECT * FROM rows ORDER BY seq").fetchall()
    tables = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    return rows, tables


CASES: list[tuple[str, set[str]]] = [
    # booleans compare by JSON type; missing and null never compare
    ("metadata.flagged = true", ids("r01")),
    ("metadata.flagged = false", ids("r02", "r11")),
    ("metadata.flagged != true", ids("r02", "r11")),
    ("NOT metadata.flagged = true", ids("r02", "r11")),
    ("metadata.flagged = 1", ids("r03")),
    ("metadata.flagged = 'true'", ids("r05")),
    ("metadata.flagged = null", set()),
    ("metadata.flagged IS NULL", ids("r04", "r06", "r07", "r08", "r09", "r10", "r12")),
    ("metadata.flagged IS NOT NULL", ids("r01", "r02", "r03", "r05", "r11")),
    ("metadata.thumbs_up = false", ids("r08")),
    ("metadata.thumbs_up != true", ids("r08")),
    ("metadata.user.id IN ('u1', 'u2') AND NOT metadata.thumbs_up", ids("r08")),
    # numbers
    ("scores.user_rating > 0.8", ids("r01", "r03", "r11")),
    ("scores.user_rating >= 0.8", ids("r01", "r03", "r07", "r11")),
    ("0.8 < scores.user_rating", ids("r01", "r03", "r11")),
    ("metadata.score_text > 0.5", set()),  # a string is not a number
    ("scores.correctness BETWEEN 0.3 AND 0.6", ids("r01", "r10", "r11")),
    ("comments IS NOT NULL and scores.correctness < 0.5", ids("r01", "r04", "r10")),
    ("comment IS NOT NULL", ids("r01", "r03", "r04", "r10")),
    ("comment IS NULL", ids("r02", "r05", "r06", "r07", "r08", "r09", "r11", "r12")),
    # arrays: INCLUDES / CONTAINS / IN
    ("tags INCLUDES 'annotated'", ids("r01", "r06", "r07", "r10")),
    ("tags includes \"annotated\"", ids("r01", "r06", "r07", "r10")),
    ("'annotated' IN tags", ids("r01", "r06", "r07", "r10")),
    ("tags NOT INCLUDES 'annotated'", ids("r02", "r03", "r05", "r08", "r09", "r12")),
    ("tags CONTAINS 'value-added'", ids("r02", "r10")),
    ("tags NOT CONTAINS 'value-added' AND created > '2026-02-28'", ids("r01", "r06", "r12")),
    ("tags INCLUDES ['annotated', 'x']", ids("r06")),
    ("tags IN ('value', 'solo')", ids("r08", "r12")),
    ("metadata.nested.list INCLUDES 2", ids("r09")),
    # time
    ("created > now() - interval 7 day", ids("r01", "r03", "r06", "r07", "r08", "r10", "r12")),
    ("created >= now() - interval 7 days", ids("r01", "r03", "r06", "r07", "r08", "r09", "r10", "r12")),
    ("created > now() - interval '7 days'", ids("r01", "r03", "r06", "r07", "r08", "r10", "r12")),
    ("created > NOW() - INTERVAL 86400 SECOND", ids("r06", "r10", "r12")),
    ("created > current_timestamp - interval 1 week", ids("r01", "r03", "r06", "r07", "r08", "r10", "r12")),
    ("created > now() - interval 1 month", ALL - ids("r04", "r05")),
    ("created >= current_date", ids("r06", "r12")),
    ("created < '2026-01-01'", ids("r05")),
    ("created >= '2026-02-28T00:00:00Z' AND created < '2026-03-01T01:00:00+01:00'", ids("r01", "r10")),
    ("created = '2026-02-20T00:00:00Z'", ids("r02")),
    ("tags INCLUDES 'annotated' AND created > now() - interval 60 minute", ids("r06")),
    # text: LIKE is case-sensitive, ILIKE is not, MATCH is word-prefix and case-insensitive
    ("input ILIKE '%refund%'", ids("r01", "r03", "r04", "r06", "r07", "r11")),
    ("input LIKE '%refund%'", ids("r01", "r04", "r07", "r11")),
    ("input NOT ILIKE '%refund%'", ids("r02", "r05", "r08", "r09", "r10", "r12")),
    ("input NOT LIKE '%refund%'", ids("r02", "r03", "r05", "r06", "r08", "r09", "r10", "r12")),
    ("input ILIKE 'école%'", ids("r11")),
    ("input LIKE 'a\\_b'", ids("r12")),
    ("input LIKE '100\\% sure'", ids("r10")),
    ("input LIKE '_rder #%'", ids("r09")),
    ("input = 'hello'", ids("r05")),
    ("output MATCH 'refund'", ids("r01", "r03", "r08")),
    ("input MATCH 'refund'", ids("r01", "r03", "r04", "r06", "r11")),
    ("tags MATCH 'value'", ids("r02", "r08", "r10")),
    ("output IS NULL", ids("r04", "r05", "r06", "r07", "r09", "r10", "r12")),
    # IN lists
    ("span_attributes.type IN ('llm','tool')", ids("r01", "r02", "r04", "r06", "r09", "r10", "r11")),
    ("span_attributes.type NOT IN ('llm','tool')", ids("r03", "r05", "r08")),
    ("span_attributes.type IN ['llm']", ids("r01", "r04", "r09", "r11")),
    ("span_attributes.type IN ('llm', 1)", ids("r01", "r04", "r09", "r11")),
    ("span_attributes.purpose IS NULL OR span_attributes.purpose != 'scorer'", ALL - ids("r04")),
    ("id IN ('r01', 'r05', 'nope')", ids("r01", "r05")),
    # paths: dots, brackets, quoted segments, array indexes
    ("metadata.user.id = 'u1'", ids("r01", "r08")),
    ("scores['Answer quality'] > 0.5", ids("r01")),
    ('scores."Answer quality" < 0.5', ids("r06")),
    ('metadata["weird key"] = "v"', ids("r12")),
    ("metadata['it''s'] = 1", ids("r12")),
    ("metadata.model = \"gpt-4\"", ids("r01")),
    ("metadata.model != 'gpt-4'", ids("r11")),
    ("tags[0] = 'annotated'", ids("r01", "r06", "r07")),
    ("tags[-1] = 'annotated'", ids("r07", "r10")),
    ("metadata.nested.list[1] = 2", ids("r09")),
    # computed fields and arithmetic
    ("duration < 2", ids("r01", "r06")),
    ("metrics.end - metrics.start > 2", ids("r02", "r04")),
    ("scores.user_rating * 10 >= 9", ids("r01", "r03")),
    ("-scores.correctness > -0.2", ids("r04")),
    ("(scores.correctness + 0.1) / 2 > 0.4", ids("r02")),
    ("metrics.end % 2 = 1", ids("r02")),
    ("metrics.end % 2 = 1.5", ids("r01")),
    ("metadata.thumbs_up", ids("r09")),
    ("NOT is_root", ids("r02", "r03", "r06")),
    # columns
    ("_xact_id > '1000192656880881010'", ids("r11", "r12")),
    ("_xact_id = 1000192656880881003", ids("r03")),
    ("is_root = false", ids("r02", "r03", "r06")),
    ("is_root AND root_span_id = 't1'", ids("r01")),
    ("_pagination_key >= 'p00000000000000000011'", ids("r11", "r12")),
    ("span_id = 's4'", ids("r04")),
    # logic
    ("root_span_id = 't4' OR (metadata.flagged = false AND scores.correctness > 0.7)", ids("r02", "r04", "r06")),
    ("NOT (tags INCLUDES 'annotated') AND span_attributes.type = 'llm'", ids("r09")),
    ("1 = 1", ALL),
    ("false", set()),
    # injection-looking values are just values
    ("input = '1; DROP TABLE rows'", set()),
    ("input = 'x'' OR 1=1 --'", set()),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_selects_exact_rows(db: sqlite3.Connection, text: str, expected: set[str]) -> None:
    compiled = compile_filter_text(text, now=NOW)
    assert "?" in compiled.sql or not compiled.params
    assert compiled.sql.count("?") == len(compiled.params)
    assert run(db, compiled) == expected


def test_case_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_literals_are_parameters_not_sql() -> None:
    compiled = compile_filter_text("input ILIKE '%refund%' AND metadata.model = 'gpt-4' AND tags INCLUDES 'annotated'", now=NOW)
    for value in ("refund", "gpt-4", "annotated"):
        assert value not in compiled.sql
    assert "annotated" in compiled.params and "gpt-4" in compiled.params


def test_path_and_column_mapping_follows_the_contract() -> None:
    assert compile_filter_text("metadata.user.id = 'u1'", now=NOW).sql.count("""json_extract(r.data, '$."metadata"."user"."id"')""") == 1
    assert compile_filter_text("created > '2026-01-01'", now=NOW) == CompiledFilter(
        "r.created > ?", ["2026-01-01T00:00:00.000000Z"], ("2026-01-01T00:00:00.000000Z", None)
    )
    assert compile_filter_text("_xact_id >= '42'", now=NOW) == CompiledFilter("r.xact_id >= ?", [42])
    assert compile_filter_text("id = 'a'", now=NOW) == CompiledFilter("r.id = ?", ["a"], keyed=True)
    assert compile_filter_text("root_span_id IN ('a', 'b') AND input = 1", now=NOW).keyed
    assert not compile_filter_text("id = root_span_id OR id = 'a'", now=NOW).keyed
    assert compile_filter_text("_pagination_key < 'p1'", now=NOW).sql == "r.pagination_key < ?"
    assert compile_filter_text("root_span_id = 'x'", now=NOW).sql == "r.root_span_id = ?"
    assert compile_filter_text("is_root = true", now=NOW) == CompiledFilter("r.is_root = ?", [1])


def test_time_literals_are_canonical_utc() -> None:
    expected = "2026-02-22T12:00:00.000000Z"
    assert compile_filter_text("created > now() - interval 7 day", now=NOW).params == [expected]
    for literal in ("2026-02-22T12:00:00Z", "2026-02-22T13:00:00+01:00", "2026-02-22 12:00:00", "2026-02-22T12:00:00.000000+00:00"):
        assert compile_filter_text(f"created > '{literal}'", now=NOW).params == [expected]
    assert compile_filter_text("created > '2026-02-22'", now=NOW).params == ["2026-02-22T00:00:00.000000Z"]
    # month arithmetic clamps the day; naive `now` is UTC
    assert compile_filter_text("created > now() - interval 1 month", now=datetime(2026, 3, 31)).params == [
        "2026-02-28T00:00:00.000000Z"
    ]
    assert compile_filter_text("created > now() - interval 1 year + interval 2 hour", now=NOW).params == [
        "2025-03-01T14:00:00.000000Z"
    ]


# ---- JSON AST --------------------------------------------------------------------------------


def test_bt_discovery_filter(db: sqlite3.Connection) -> None:
    # bt datasets pipeline: window, then source filter, then root ids, as `and` children
    tree = {
        "op": "and",
        "children": [
            {"btql": "created >= NOW() - INTERVAL 86400 SECOND"},
            {"btql": "tags INCLUDES 'annotated'"},
            {"op": "in", "left": ident("root_span_id"), "right": lit(["t4", "t1"])},
        ],
    }
    assert run(db, compile_filter_tree(tree, now=NOW)) == ids("r06")
    # a single part is sent bare
    assert run(db, compile_filter_tree({"btql": "created >= NOW() - INTERVAL 86400 SECOND"}, now=NOW)) == ids(
        "r06", "r10", "r12"
    )


def test_sdk_trace_fetch_filter_children_form(db: sqlite3.Connection) -> None:
    purpose = ident("span_attributes", "purpose")
    tree = {
        "op": "and",
        "children": [
            {"op": "eq", "left": ident("root_span_id"), "right": lit("t4")},
            {"op": "or", "children": [
                {"op": "isnull", "expr": purpose},
                {"op": "ne", "left": purpose, "right": lit("scorer")},
            ]},
        ],
    }
    assert run(db, compile_filter_tree(tree, now=NOW)) == ids("r06")


def test_sdk_trace_fetch_filter_left_right_form(db: sqlite3.Connection) -> None:
    purpose = ident("span_attributes", "purpose")
    tree = {
        "op": "and",
        "left": {"op": "eq", "left": ident("root_span_id"), "right": lit("t1")},
        "right": {"op": "or", "left": {"op": "isnull", "expr": purpose},
                  "right": {"op": "ne", "left": purpose, "right": lit("scorer")}},
    }
    assert run(db, compile_filter_tree(tree, now=NOW)) == ids("r01", "r02", "r03")


AST_CASES: list[tuple[dict, set[str]]] = [
    ({"op": "eq", "left": ident("metadata", "flagged"), "right": lit(True)}, ids("r01")),
    ({"op": "gt", "left": ident("scores", "Answer quality"), "right": lit(0.5)}, ids("r01")),
    ({"op": "includes", "left": ident("tags"), "right": lit("annotated")}, ids("r01", "r06", "r07", "r10")),
    ({"op": "contains", "left": ident("tags"), "right": lit("value-added")}, ids("r02", "r10")),
    ({"op": "includes", "left": ident("metadata"), "right": lit({"user": {"id": "u1"}})}, ids("r01", "r08")),
    ({"op": "ilike", "left": ident("input"), "right": lit("%refund%")}, ids("r01", "r03", "r04", "r06", "r07", "r11")),
    ({"op": "like", "left": ident("input"), "right": lit("%refund%")}, ids("r01", "r04", "r07", "r11")),
    ({"op": "match", "left": ident("output"), "right": lit("refund")}, ids("r01", "r03", "r08")),
    ({"op": "in", "left": ident("span_attributes", "type"), "right": lit(["task", "score"])}, ids("r03", "r05")),
    ({"op": "in", "left": lit("annotated"), "right": ident("tags")}, ids("r01", "r06", "r07", "r10")),
    ({"op": "not", "expr": {"op": "eq", "left": ident("metadata", "flagged"), "right": lit(True)}}, ids("r02", "r11")),
    ({"op": "isnotnull", "expr": ident("comments")}, ids("r01", "r03", "r04", "r10")),
    ({"op": "ge", "left": ident("tags", 0), "right": lit("value")}, ids("r02", "r08", "r10")),
    ({"op": "lt", "left": {"op": "sub", "left": ident("metrics", "end"), "right": ident("metrics", "start")},
      "right": lit(2)}, ids("r01", "r06")),
    ({"op": "gt", "left": ident("created"),
      "right": {"op": "sub", "left": {"op": "function", "name": ident("now"), "args": []},
                "right": {"op": "interval", "value": 1, "unit": "day"}}}, ids("r06", "r10", "r12")),
    ({"op": "and", "children": []}, ALL),
    ({"op": "or", "children": [{"btql": "id = 'r01'"}, {"btql": "id = 'r02'"}]}, ids("r01", "r02")),
]


@pytest.mark.parametrize(("tree", "expected"), AST_CASES, ids=[json.dumps(c[0])[:60] for c in AST_CASES])
def test_json_ast_filter(db: sqlite3.Connection, tree: dict, expected: set[str]) -> None:
    assert run(db, compile_filter_tree(tree, now=NOW)) == expected


def test_text_and_tree_compile_identically() -> None:
    text = compile_filter_text("metadata.flagged = true AND tags INCLUDES 'annotated'", now=NOW)
    tree = compile_filter_tree({"op": "and", "children": [
        {"op": "eq", "left": ident("metadata", "flagged"), "right": lit(True)},
        {"op": "includes", "left": ident("tags"), "right": lit("annotated")},
    ]}, now=NOW)
    assert text == tree


@pytest.mark.parametrize("tree, fragment", [
    ({"op": "frobnicate", "left": ident("a"), "right": lit(1)}, "frobnicate"),
    ({"left": ident("a")}, "op"),
    ({"op": "eq", "left": ident("a")}, "right"),
    ({"op": "function", "name": ident("foo"), "args": [lit(1)]}, "foo"),
    ({"op": "ident", "name": []}, "name"),
    ({"btql": "a = = 1"}, "cannot parse"),
    ({"btql": 5}, "btql"),
    ({"op": "and", "children": [{"op": "star"}]}, "star"),
])
def test_json_ast_errors_name_the_problem(tree: dict, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        compile_filter_tree(tree, now=NOW)
    assert fragment in str(info.value)


# ---- and_filters -----------------------------------------------------------------------------


def test_and_filters(db: sqlite3.Connection) -> None:
    a = compile_filter_text("tags INCLUDES 'annotated'", now=NOW)
    b = compile_filter_text("created > now() - interval 1 day", now=NOW)
    assert and_filters() is None
    assert and_filters(None, None) is None
    assert and_filters(None, a) is a
    both = and_filters(a, None, b)
    assert both is not None and both.params == a.params + b.params
    assert run(db, both) == ids("r06", "r10")
    # composes with OR inside without changing meaning
    c = compile_filter_text("id = 'r06' OR id = 'r07'", now=NOW)
    assert run(db, and_filters(a, c)) == ids("r06", "r07")
    assert run(db, and_filters(b, c)) == ids("r06")


# ---- bad input -------------------------------------------------------------------------------

BAD = [
    ("", "empty"),
    ("   ", "empty"),
    ("metadata.flagged =", "cannot parse"),
    ("a = = 1", "cannot parse"),
    ("(a = 1", "cannot parse"),
    ("a = 1)", "cannot parse"),
    ("input = 'unterminated", "unterminated"),
    ("input = 'x''", "unterminated"),
    ("foo(1) = 2", "unknown function foo"),
    ("lower(input) = 'x'", "unknown function lower"),
    ("1=1; DROP TABLE rows", "';'"),
    ("a = 1; DELETE FROM rows", "';'"),
    ("a = 1 -- comment", "comments"),
    ("a = 1 /* comment */", "comments"),
    ("/* x */ a = 1", "comments"),
    ("a = 1 OR 1=1 --", "comments"),
    ("x IN (SELECT id FROM rows)", "subqueries"),
    ("SELECT * FROM rows", "statements"),
    ("DROP TABLE rows", "statements"),
    ("a || b", "'||'"),
    ("a ? 1 : 2", "'?'"),
    ("a = ?", "'?'"),
    ("a = @p", "parameters"),
    ("a::int = 1", "'::'"),
    ("CASE WHEN a THEN 1 END = 1", "CASE"),
    ("CAST(a AS INT) = 1", "cast"),
    ("a ^ 2 = 1", "unsupported operator"),
    ("'abc'", "expected a condition"),
    ("scores.user_rating + 1", "expected a condition"),
    ("created > 5", "timestamp"),
    ("created > 'yesterday'", "yesterday"),
    ("_xact_id > 'abc'", "transaction id"),
    ("created + interval 1 day > now()", "constants only"),
    ("now() - interval 3 fortnight > created", "fortnight"),
    ("tags INCLUDES metadata.x", "literal on the right"),
    ("metadata.x LIKE metadata.y", "quoted pattern"),
    ("output MATCH '!!!'", "at least one word"),
    ("metadata.x = (1, 2)", "IN"),
    ("is_root = 'yes'", "true or false"),
    ("created.x = 1", "no fields"),
    ("metadata.* = 1", "'*'"),
]


@pytest.mark.parametrize(("text", "fragment"), BAD, ids=[b[0] or "<empty>" for b in BAD])
def test_bad_filters_raise_query_error(db: sqlite3.Connection, text: str, fragment: str) -> None:
    before = snapshot(db)
    with pytest.raises(QueryError) as info:
        compiled = compile_filter_text(text, now=NOW)
        run(db, compiled)  # only reached if compilation wrongly succeeded
    message = str(info.value)
    assert message and fragment.lower() in message.lower(), message
    assert snapshot(db) == before


def test_table_unchanged_after_every_bad_input(db: sqlite3.Connection) -> None:
    before = snapshot(db)
    for text, _ in BAD:
        try:
            run(db, compile_filter_text(text, now=NOW))
        except QueryError:
            pass
    assert snapshot(db) == before
    assert db.execute("SELECT count(*) FROM rows").fetchone()[0] == len(ROWS)


def test_query_error_is_a_value_error() -> None:
    assert issubclass(QueryError, ValueError)


def test_long_filters_stay_within_sqlite_limits(db: sqlite3.Connection) -> None:
    ors = " OR ".join(f"id = 'r{i:02d}'" for i in range(1, 2001))
    assert run(db, compile_filter_text(ors, now=NOW)) == ALL
    ands = " AND ".join(["scores.user_rating > 0.1"] * 2000)
    assert run(db, compile_filter_text(ands, now=NOW)) == ids("r01", "r02", "r03", "r07", "r11")
    many = compile_filter_tree({"op": "in", "left": ident("root_span_id"), "right": lit([f"t{i}" for i in range(5000)])}, now=NOW)
    assert run(db, many) == ALL
    with pytest.raises(QueryError, match="too large"):
        compile_filter_tree({"op": "in", "left": ident("root_span_id"), "right": lit(list(range(40000)))}, now=NOW)
    with pytest.raises(QueryError, match="nested too deeply"):
        compile_filter_tree(_nested_not(5000), now=NOW)
    with pytest.raises(QueryError):
        compile_filter_text("(" * 5000 + "a = 1" + ")" * 5000, now=NOW)


def _nested_not(depth: int) -> dict:
    node: dict = lit(True)
    for _ in range(depth):
        node = {"op": "not", "expr": node}
    return node


def test_mangled_filters_either_compile_to_valid_sql_or_raise_query_error(db: sqlite3.Connection) -> None:
    """Random edits of the table's filters: never a crash, never invalid SQL, never a changed table."""
    rng = random.Random(20260301)
    pieces = ["'", '"', "`", "(", ")", "[", "]", ",", ".", "=", "!=", " AND ", " OR ", " NOT ", " IN ",
              " IS ", " NULL ", " LIKE ", " MATCH ", " INCLUDES ", "-", "*", "/", "%", " interval 1 day ",
              " now() ", "--", "/*", ";", "|", "\\", "1.5", " BETWEEN ", " true ", "select ", " from ", "\n"]
    texts = [case[0] for case in CASES]
    before = snapshot(db)
    for _ in range(400):
        text = rng.choice(texts)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randint(0, len(text))
            if rng.random() < 0.5:
                text = text[:pos] + rng.choice(pieces) + text[pos:]
            else:
                text = text[:pos] + text[pos + rng.randint(1, 4):]
        try:
            compiled = compile_filter_text(text, now=NOW)
        except QueryError as error:
            assert str(error)
            continue
        run(db, compiled)  # must be valid SQLite
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "text, bounds",
    [
        ("created >= '2026-02-01' AND created < '2026-02-02' AND metadata.flagged = true",
         ("2026-02-01T00:00:00.000000Z", "2026-02-02T00:00:00.000000Z")),
        ("'2026-02-01' <= created", ("2026-02-01T00:00:00.000000Z", None)),
        ("created > now() - interval 7 day", ("2026-02-22T12:00:00.000000Z", None)),
        ("created = '2026-02-05'", ("2026-02-05T00:00:00.000000Z", "2026-02-05T00:00:00.000000Z")),
        ("(created > '2026-02-01' AND id = 'x') AND created < '2026-03-01'",
         ("2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z")),
        # only a top-level AND bounds every match
        ("created > '2026-02-01' OR id = 'x'", (None, None)),
        ("NOT created < '2026-02-01'", (None, None)),
        ("metadata.created > '2026-02-01'", (None, None)),
    ],
)
def test_created_bounds_come_from_the_top_level_and(text, bounds) -> None:
    assert compile_filter_text(text, now=NOW).created_range == bounds


def test_json_tree_and_and_filters_combine_created_bounds() -> None:
    tree = {"op": "and", "children": [{"btql": "created >= NOW() - INTERVAL 86400 SECOND"}, {"btql": "metadata.flagged = true"}]}
    assert compile_filter_tree(tree, now=NOW).created_range == ("2026-02-28T12:00:00.000000Z", None)
    combined = and_filters(compile_filter_text("created >= '2026-02-01'", now=NOW), compile_filter_text("created < '2026-02-03'", now=NOW))
    assert combined.created_range == ("2026-02-01T00:00:00.000000Z", "2026-02-03T00:00:00.000000Z")
