"""`/btql` queries in their three forms (SQL, BTQL pipe, JSON AST) read into one ParsedQuery."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from helpers import ident, lit
from pipelines_repo.local.query import (
    ParsedQuery,
    QueryError,
    SelectItem,
    SortItem,
    compile_filter_text,
    compile_filter_tree,
    parse_query,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def source(name: str, ref: str, shape: str | None = None) -> dict:
    node = {"op": "function", "name": ident(name), "args": [lit(ref)]}
    if shape:
        node["shape"] = shape
    return node


# ---- SQL -------------------------------------------------------------------------------------


def test_sql_full_query() -> None:
    q = parse_query(
        "SELECT id, input AS question FROM project_logs('p-1', shape => 'traces') "
        "WHERE tags INCLUDES 'annotated' AND created > now() - interval 7 day "
        "ORDER BY _pagination_key DESC LIMIT 100 OFFSET 'cursor-abc'",
        now=NOW,
    )
    assert q == ParsedQuery(
        source="project_logs",
        object_ref="p-1",
        shape="traces",
        select=(SelectItem("id", ("id",)), SelectItem("question", ("input",))),
        filter=compile_filter_text("tags INCLUDES 'annotated' AND created > now() - interval 7 day", now=NOW),
        sort=(SortItem("_pagination_key", "desc"),),
        limit=100,
        cursor="cursor-abc",
    )


def test_star_anywhere_in_the_list_selects_all_fields() -> None:
    assert parse_query("SELECT id, input AS q, * FROM project_logs('p')", now=NOW).select is None
    assert parse_query("select: *, id | from: project_logs('p')", now=NOW).select is None
    ast = {"select": [{"alias": "id", "expr": ident("id")}, {"op": "star"}], "from": source("project_logs", "p")}
    assert parse_query(ast, now=NOW).select is None


def test_sql_defaults() -> None:
    q = parse_query("select * from dataset('d-1')", now=NOW)
    assert (q.source, q.object_ref, q.shape, q.select, q.filter, q.sort, q.limit, q.cursor) == (
        "dataset", "d-1", "spans", None, None, (), None, None,
    )


def test_sql_reference_example() -> None:
    q = parse_query(
        "SELECT id, input FROM project_logs('<pid>') WHERE created > now() - interval 1 day "
        "ORDER BY _pagination_key LIMIT 100 OFFSET '<cursor>'",
        now=NOW,
    )
    assert q.select == (SelectItem("id", ("id",)), SelectItem("input", ("input",)))
    assert q.filter is not None and q.filter.params == ["2026-02-28T12:00:00.000000Z"]
    assert q.sort == (SortItem("_pagination_key", "asc"),)
    assert (q.limit, q.cursor) == (100, "<cursor>")


def test_sql_paths_keywords_and_shape_keyword() -> None:
    q = parse_query(
        'SELECT metadata.user.id, scores."Answer quality" AS aq, "input", metrics.end AS e '
        "FROM project_logs(\"p\") traces WHERE comment IS NOT NULL ORDER BY created, id DESC;",
        now=NOW,
    )
    assert q.object_ref == "p" and q.shape == "traces"
    assert q.select == (
        SelectItem("id", ("metadata", "user", "id")),
        SelectItem("aq", ("scores", "Answer quality")),
        SelectItem("input", ("input",)),
        SelectItem("e", ("metrics", "end")),
    )
    assert q.filter == compile_filter_text("comments IS NOT NULL", now=NOW)
    assert q.sort == (SortItem("created", "asc"), SortItem("id", "desc"))


@pytest.mark.parametrize("shape", ["spans", "traces", "summary"])
def test_sql_shapes(shape: str) -> None:
    assert parse_query(f"SELECT * FROM project_logs('p', shape => '{shape}')", now=NOW).shape == shape
    assert parse_query(f"SELECT * FROM project_logs('p') {shape}", now=NOW).shape == shape


# ---- BTQL pipe -------------------------------------------------------------------------------


def test_pipe_reference_example() -> None:
    q = parse_query(
        "select: * | from: project_logs('<id>') spans | filter: tags INCLUDES 'annotated' AND "
        "created > now() - interval 60 minute | sort: _pagination_key DESC | limit: 100 | cursor: '<c>'",
        now=NOW,
    )
    assert q == ParsedQuery(
        source="project_logs",
        object_ref="<id>",
        shape="spans",
        select=None,
        filter=compile_filter_text("tags INCLUDES 'annotated' AND created > now() - interval 60 minute", now=NOW),
        sort=(SortItem("_pagination_key", "desc"),),
        limit=100,
        cursor="<c>",
    )


def test_pipe_newlines_multiline_filter_and_quoted_pipes() -> None:
    q = parse_query(
        """
        select: id, metadata.user.id AS user_id
        from: dataset('d|1') traces
        filter: input ILIKE '%a|b%'
          AND metadata.flagged = true
        sort: created desc, id
        limit: 5
        cursor: "c|2"
        """,
        now=NOW,
    )
    assert (q.source, q.object_ref, q.shape) == ("dataset", "d|1", "traces")
    assert q.select == (SelectItem("id", ("id",)), SelectItem("user_id", ("metadata", "user", "id")))
    assert q.filter == compile_filter_text("input ILIKE '%a|b%' AND metadata.flagged = true", now=NOW)
    assert q.sort == (SortItem("created", "desc"), SortItem("id", "asc"))
    assert (q.limit, q.cursor) == (5, "c|2")


def test_pipe_defaults_and_shape_argument() -> None:
    q = parse_query("from: project_logs('p', shape => 'summary')", now=NOW)
    assert (q.shape, q.select, q.filter, q.sort, q.limit, q.cursor) == ("summary", None, None, (), None, None)
    assert parse_query("from: dataset('d')", now=NOW).shape == "spans"


# ---- JSON AST --------------------------------------------------------------------------------


def test_json_bt_discovery_query() -> None:
    filt = {
        "op": "and",
        "children": [
            {"btql": "created >= NOW() - INTERVAL 86400 SECOND"},
            {"btql": "metadata.flagged = true"},
            {"op": "in", "left": ident("root_span_id"), "right": lit(["a", "b"])},
        ],
    }
    query = {
        "select": [{"alias": f, "expr": ident(f)} for f in ("root_span_id", "id", "created", "_xact_id", "is_root")],
        "from": source("project_logs", "p-uuid", "spans"),
        "limit": 1000,
        "sort": [{"expr": ident("_pagination_key"), "dir": "desc"}],
        "filter": filt,
        "cursor": None,
    }
    q = parse_query(query, now=NOW)
    assert q.source == "project_logs" and q.object_ref == "p-uuid" and q.shape == "spans"
    assert q.select == tuple(SelectItem(f, (f,)) for f in ("root_span_id", "id", "created", "_xact_id", "is_root"))
    assert q.filter == compile_filter_tree(filt, now=NOW)
    assert q.sort == (SortItem("_pagination_key", "desc"),)
    assert (q.limit, q.cursor) == (1000, None)


def test_json_sdk_object_fetcher_query() -> None:
    purpose = ident("span_attributes", "purpose")
    query = {
        "select": [{"op": "star"}],
        "from": source("project_logs", "p"),
        "filter": {"op": "and", "children": [
            {"op": "eq", "left": ident("root_span_id"), "right": lit("t1")},
            {"op": "or", "children": [{"op": "isnull", "expr": purpose},
                                      {"op": "ne", "left": purpose, "right": lit("scorer")}]},
        ]},
        "cursor": "next",
        "limit": 1000,
    }
    q = parse_query(query, now=NOW)
    assert (q.source, q.shape, q.select, q.sort, q.limit, q.cursor) == ("project_logs", "spans", None, (), 1000, "next")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE rows(id TEXT, root_span_id TEXT, data TEXT)")
    conn.executemany("INSERT INTO rows VALUES (?, ?, ?)", [
        ("a", "t1", '{"span_attributes": {"purpose": "scorer"}}'),
        ("b", "t1", '{"span_attributes": {"type": "llm"}}'),
        ("c", "t1", '{"span_attributes": {"purpose": "other"}}'),
        ("d", "t2", "{}"),
    ])
    assert q.filter is not None
    found = {r[0] for r in conn.execute(f"SELECT r.id FROM rows AS r WHERE {q.filter.sql}", q.filter.params)}
    assert found == {"b", "c"}


def test_json_dataset_fetch() -> None:
    q = parse_query({"select": [{"op": "star"}], "from": source("dataset", "d-1"), "limit": 1000, "cursor": ""}, now=NOW)
    assert (q.source, q.object_ref, q.cursor, q.filter) == ("dataset", "d-1", None, None)


def test_three_forms_agree() -> None:
    sql = parse_query(
        "SELECT * FROM project_logs('p', shape => 'traces') WHERE metadata.flagged = true "
        "ORDER BY _xact_id DESC LIMIT 10 OFFSET 'c'", now=NOW)
    pipe = parse_query(
        "select: * | from: project_logs('p') traces | filter: metadata.flagged = true | "
        "sort: _xact_id desc | limit: 10 | cursor: 'c'", now=NOW)
    ast = parse_query({
        "select": [{"op": "star"}],
        "from": source("project_logs", "p", "traces"),
        "filter": {"op": "eq", "left": ident("metadata", "flagged"), "right": lit(True)},
        "sort": [{"expr": ident("_xact_id"), "dir": "desc"}],
        "limit": 10,
        "cursor": "c",
    }, now=NOW)
    assert sql == pipe == ast


# ---- errors ----------------------------------------------------------------------------------

BAD_QUERIES: list[tuple[object, str]] = [
    ("", "empty"),
    ("SELECT * FROM prompt_session('e')", "prompt_session"),
    ("SELECT * FROM project_dataset('p', 'd')", "not supported"),
    ("SELECT * FROM somewhere('x')", "unknown data source"),
    ("SELECT * FROM project_logs", "project_logs('<id>')"),
    ("SELECT * FROM project_logs('a', 'b')", "one quoted string"),
    ("SELECT * FROM project_logs(42)", "quoted string"),
    ("SELECT * FROM project_logs('p', shape => 'forest')", "shape"),
    ("SELECT * FROM project_logs('p', mode => 'x')", "mode"),
    ("SELECT * FROM project_logs('p') AS logs", "alias"),
    ("SELECT count(*) FROM project_logs('p')", "only fields"),
    ("SELECT id + 1 FROM project_logs('p')", "only fields"),
    ("SELECT * FROM project_logs('p') GROUP BY id", "GROUP BY"),
    ("SELECT * FROM project_logs('p') WHERE id = 'x' HAVING id = 'x'", "HAVING"),
    ("SELECT * FROM project_logs('p') JOIN dataset('d') ON 1=1", "JOIN"),
    ("SELECT * FROM project_logs('p') UNION SELECT * FROM dataset('d')", "UNION"),
    ("SELECT * FROM (SELECT * FROM project_logs('p'))", "subqueries"),
    ("SELECT * FROM project_logs('p') WHERE id IN (SELECT id FROM rows)", "subqueries"),
    ("WITH x AS (SELECT 1) SELECT * FROM project_logs('p')", "WITH"),
    ("SELECT DISTINCT id FROM project_logs('p')", "DISTINCT"),
    ("SELECT * FROM project_logs('p') ORDER BY metadata.x", "sorting by metadata.x"),
    ("SELECT * FROM project_logs('p') LIMIT 'ten'", "LIMIT"),
    ("SELECT * FROM project_logs('p') OFFSET 10", "cursor"),
    ("SELECT * FROM project_logs('p') WHERE foo(1)", "unknown function foo"),
    ("SELECT * FROM project_logs('p') WHERE x = ", "cannot parse"),
    ("SELECT * FROM project_logs('p'); DROP TABLE rows", "';'"),
    ("SELECT * FROM project_logs('p') -- hi", "comments"),
    ("SELECT * FROM project_logs('p') WHERE input = 'x' /* c */", "comments"),
    ("SELECT * FROM project_logs('p') WHERE input = 'x", "unterminated"),
    ("DELETE FROM rows", "SELECT"),
    ("select: * | from: prompt_session('e')", "prompt_session"),
    ("select: * | from: project_logs('p') | dimensions: metadata.model", "dimensions"),
    ("select: * | from: project_logs('p') | measures: count(1)", "measures"),
    ("select: * | project_logs('p')", "after |"),
    ("select: * | from: project_logs('p') |", "ends with '|'"),
    ("select: *", "from:"),
    ("select: * | from: project_logs('p') | limit: -1", "limit"),
    ("select: * | from: project_logs('p') | limit: 10 | limit: 20", "twice"),
    ("select: * | from: project_logs('p') | sort: metadata.x", "sorting by"),
    ("select: * | from: project_logs('p') | filter: 1=1; DROP TABLE rows", "';'"),
    ("select: * | from: project_logs('p') | filter: a = 'x", "unterminated"),
    ("select: * | from: project_logs('p') spans | cursor: 'a' 'b'", "cursor"),
    ({"select": [{"op": "star"}]}, "from"),
    ({"from": source("prompt_session", "e")}, "prompt_session"),
    ({"from": {"op": "ident", "name": ["project_logs"]}}, "function"),
    ({"from": source("project_logs", "p"), "measures": [{"alias": "n", "expr": {"op": "function"}}]}, "measures"),
    ({"from": source("project_logs", "p", "forest")}, "shape"),
    ({"from": source("project_logs", "p"), "limit": "many"}, "limit"),
    ({"from": source("project_logs", "p"), "limit": True}, "limit"),
    ({"from": source("project_logs", "p"), "cursor": 5}, "cursor"),
    ({"from": source("project_logs", "p"), "sort": [{"expr": ident("metadata", "x"), "dir": "desc"}]}, "sorting by"),
    ({"from": source("project_logs", "p"), "sort": [{"expr": ident("id"), "dir": "sideways"}]}, "asc or desc"),
    ({"from": source("project_logs", "p"), "select": [{"alias": "x", "expr": lit(1)}]}, "only fields"),
    ({"from": source("project_logs", "p"), "filter": {"op": "bogus"}}, "bogus"),
    ({"from": source("project_logs", "p"), "filter": {"btql": "x = 1; DROP TABLE rows"}}, "';'"),
    (42, "query must be"),
]


@pytest.mark.parametrize(("query", "fragment"), BAD_QUERIES, ids=[str(q)[:60] or "<empty>" for q, _ in BAD_QUERIES])
def test_bad_queries_raise_query_error(query: object, fragment: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query, now=NOW)  # type: ignore[arg-type]
    message = str(info.value)
    assert message and fragment.lower() in message.lower(), message
