"""Read the ``query`` field of ``POST /btql`` in its three forms (docs/BT_COMPAT.md, "BTQL query forms").

1. SQL text::

       SELECT a, b AS c FROM project_logs('<id>', shape => 'traces')
       WHERE ... ORDER BY _pagination_key DESC LIMIT 100 OFFSET '<cursor>'

2. BTQL pipe text (clauses separated by ``|`` or new lines; the shape is a trailing keyword)::

       select: * | from: project_logs('<id>') spans | filter: ... | sort: _pagination_key desc
       | limit: 100 | cursor: '<cursor>'

3. The JSON AST the SDK and ``bt`` send (``{"select": [...], "from": {"op": "function", ...}, ...}``).

All three become one :class:`ParsedQuery`; the filter is already compiled to SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from .errors import QueryError
from .filters import CompiledFilter, compile_filter_tree, compile_node
from .nodes import Path, PathPart, from_json
from .syntax import parse_expression, parse_tokens, path_parts, single_expression, to_node, tokenize

__all__ = ["SelectItem", "SortItem", "ParsedQuery", "parse_query", "SHAPES", "SORT_FIELDS", "SOURCES"]

SOURCES = ("project_logs", "dataset", "experiment")
SHAPES = ("spans", "traces", "summary")
SORT_FIELDS = ("_pagination_key", "_xact_id", "created", "id")
_OTHER_SOURCES = (
    "project_prompts",
    "project_functions",
    "project_dataset",
    "prompt_session",
    "org_prompts",
    "org_functions",
)
_EXPR = getattr(exp, "Expr", exp.Expression)  # the node base class (named Expression before sqlglot 26)
_SERVES = "it serves project_logs('<project id>'), dataset('<dataset id>') and experiment('<experiment id>')"


@dataclass(frozen=True)
class SelectItem:
    """One selected field: output name ``alias`` and field ``path`` (keys from the row's top level)."""

    alias: str
    path: tuple[str, ...]


_STAR = SelectItem("*", ())  # placeholder while reading a select list


@dataclass(frozen=True)
class SortItem:
    """``field`` is one of :data:`SORT_FIELDS`; ``dir`` is ``"asc"`` or ``"desc"``."""

    field: str
    dir: str


@dataclass(frozen=True)
class ParsedQuery:
    """A ``/btql`` query the local plane can run."""

    source: str  # "project_logs" | "dataset"
    object_ref: str  # the id (or name) given as the first argument
    shape: str  # "spans" | "traces" | "summary"; default "spans"
    select: tuple[SelectItem, ...] | None  # None means * (all fields), also when * is one of several items
    filter: CompiledFilter | None
    sort: tuple[SortItem, ...]  # empty = server default
    limit: int | None
    cursor: str | None


def parse_query(query: str | dict, *, now: datetime) -> ParsedQuery:
    """Read a SQL string, a BTQL pipe string or a JSON AST into a :class:`ParsedQuery`.

    ``now`` is what ``now()`` means in the filter. Raises :class:`QueryError` (the app answers
    400 with its message) for anything malformed or unsupported.
    """
    try:
        if isinstance(query, dict):
            return _from_json(query, now)
        if isinstance(query, str):
            if not query.strip():
                raise QueryError("the query is empty; write e.g. SELECT * FROM project_logs('<project id>') LIMIT 100")
            if _CLAUSE_HEAD.match(query):
                return _from_pipe(query, now)
            return _from_sql(query, now)
    except RecursionError:
        raise QueryError("the query is nested too deeply; simplify it") from None
    raise QueryError("query must be SQL text, BTQL text or a JSON object")


# ---------------------------------------------------------------------------------------------
# shared checks


def _source(name: str) -> str:
    lowered = name.lower()
    if lowered in SOURCES:
        return lowered
    if lowered in _OTHER_SOURCES:
        raise QueryError(f"{lowered}(...) is not supported by the local data plane; {_SERVES}")
    raise QueryError(f"unknown data source {name!r}; {_SERVES}")


def _shape(value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in SHAPES:
        raise QueryError(f"unknown shape {value!r}; use spans, traces or summary")
    return value.lower()


def _object_ref(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise QueryError(f"{source}(...) needs the id (or name) as a quoted string: {source}('<id>')")
    return value


def _select_item(parts: tuple[PathPart, ...], alias: str | None) -> SelectItem:
    if not parts or not isinstance(parts[0], str):
        raise QueryError("a selected field must start with a field name")
    if any(not isinstance(p, str) for p in parts):
        raise QueryError("array indexes are not supported in the select list; select the whole field")
    names: tuple[str, ...] = tuple(str(p) for p in parts)
    return SelectItem(alias or names[-1], names)


def _normalize_select(items: list[SelectItem]) -> tuple[SelectItem, ...] | None:
    """None (all fields) when the list holds ``*``: ``SELECT a, b AS c, *`` returns every field
    under its own name (the extra aliases are not added)."""
    if not items:
        raise QueryError("the select list is empty; use * or name fields")
    if _STAR in items:
        return None
    return tuple(items)


def _sort_item(parts: tuple[PathPart, ...] | None, direction: str) -> SortItem:
    name = parts[0] if parts and len(parts) == 1 else None
    if not isinstance(name, str) or name not in SORT_FIELDS:
        shown = ".".join(str(p) for p in parts) if parts else "an expression"
        raise QueryError(
            f"sorting by {shown} is not supported; sort by one of {', '.join(SORT_FIELDS)}"
        )
    direction = direction.lower()
    if direction not in ("asc", "desc"):
        raise QueryError(f"sort direction must be asc or desc, got {direction!r}")
    return SortItem(name, direction)


def _limit(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise QueryError("limit must be a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        raise QueryError(f"limit must be a whole number >= 0, got {value!r}")
    return value


def _cursor(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise QueryError("cursor must be the string returned by the previous page")
    return value


# ---------------------------------------------------------------------------------------------
# JSON AST


_AGGREGATE_KEYS = ("dimensions", "measures", "pivot", "unpivot")


def _from_json(query: dict, now: datetime) -> ParsedQuery:
    for key in _AGGREGATE_KEYS:
        if query.get(key):
            raise QueryError(f"{key!r} (aggregate queries) is not supported by the local data plane")
    source, ref, shape = _json_from(query.get("from"))
    if shape is None and query.get("shape") is not None:
        shape = _shape(query["shape"])
    select = _json_select(query.get("select"))
    flt = query.get("filter")
    compiled = compile_filter_tree(flt, now=now) if flt is not None else None
    sort = _json_sort(query.get("sort"))
    return ParsedQuery(
        source=source,
        object_ref=ref,
        shape=shape or "spans",
        select=select,
        filter=compiled,
        sort=sort,
        limit=_limit(query.get("limit")),
        cursor=_cursor(query.get("cursor")),
    )


def _json_from(node: Any) -> tuple[str, str, str | None]:
    if node is None:
        raise QueryError("the query needs 'from', e.g. project_logs('<project id>')")
    if not isinstance(node, dict) or node.get("op") != "function":
        raise QueryError(
            "'from' must be {'op': 'function', 'name': {'op': 'ident', 'name': ['project_logs']}, "
            "'args': [{'op': 'literal', 'value': '<id>'}]}"
        )
    name_node = node.get("name")
    name = name_node.get("name") if isinstance(name_node, dict) else name_node
    if isinstance(name, list) and len(name) == 1:
        name = name[0]
    if not isinstance(name, str):
        raise QueryError("'from' needs a function name such as project_logs or dataset")
    source = _source(name)
    args = node.get("args") or []
    if len(args) != 1 or not isinstance(args[0], dict) or args[0].get("op") != "literal":
        raise QueryError(f"{source}(...) takes one literal argument: the id, e.g. {source}('<id>')")
    ref = _object_ref(args[0].get("value"), source)
    shape = node.get("shape")
    return source, ref, _shape(shape) if shape is not None else None


def _json_select(items: Any) -> tuple[SelectItem, ...] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise QueryError("'select' must be a list such as [{'op': 'star'}]")
    out: list[SelectItem] = []
    for item in items:
        if not isinstance(item, dict):
            raise QueryError("each select item must be {'op': 'star'} or {'alias': ..., 'expr': ...}")
        if item.get("op") == "star":
            out.append(_STAR)
            continue
        expr = item.get("expr", item if item.get("op") == "ident" else None)
        node = from_json(expr, parse_expression) if expr is not None else None
        if not isinstance(node, Path):
            raise QueryError("only fields can be selected: {'alias': 'f', 'expr': {'op': 'ident', 'name': ['f']}}")
        alias = item.get("alias")
        if alias is not None and not isinstance(alias, str):
            raise QueryError("a select alias must be a string")
        out.append(_select_item(node.parts, alias))
    return _normalize_select(out)


def _json_sort(items: Any) -> tuple[SortItem, ...]:
    if not items:
        return ()
    if not isinstance(items, list):
        raise QueryError("'sort' must be a list such as [{'expr': {'op': 'ident', 'name': ['_pagination_key']}, 'dir': 'desc'}]")
    out = []
    for item in items:
        if not isinstance(item, dict) or "expr" not in item:
            raise QueryError("each sort item must be {'expr': {...}, 'dir': 'asc' | 'desc'}")
        node = from_json(item["expr"], parse_expression)
        direction = item.get("dir") or "asc"
        if not isinstance(direction, str):
            raise QueryError("sort 'dir' must be 'asc' or 'desc'")
        out.append(_sort_item(node.parts if isinstance(node, Path) else None, direction))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# SQL text

_SELECT_ARGS = {"expressions", "from", "from_", "where", "order", "limit", "offset", "kind"}
_CLAUSE_NAMES = {
    "group": "GROUP BY",
    "having": "HAVING",
    "joins": "JOIN",
    "with": "WITH (common table expressions)",
    "with_": "WITH (common table expressions)",
    "distinct": "DISTINCT",
    "qualify": "QUALIFY",
    "windows": "WINDOW",
    "laterals": "LATERAL",
    "settings": "SETTINGS",
    "sample": "TABLESAMPLE",
    "into": "SELECT INTO",
    "locks": "FOR UPDATE",
    "sort": "SORT BY",
    "cluster": "CLUSTER BY",
    "distribute": "DISTRIBUTE BY",
    "pivots": "PIVOT",
    "prewhere": "PREWHERE",
}


def _unsupported_clause(key: str) -> QueryError:
    name = _CLAUSE_NAMES.get(key, key.upper())
    return QueryError(
        f"{name} is not supported by the local data plane; it runs SELECT <fields> FROM <source> "
        "[WHERE ...] [ORDER BY ...] [LIMIT n] [OFFSET '<cursor>']"
    )


def _from_sql(text: str, now: datetime) -> ParsedQuery:
    tokens = tokenize(text, "query", allow_trailing_semicolon=True)
    if not tokens:
        raise QueryError("the query is empty")
    if tokens[0].token_type == TokenType.WITH:
        raise _unsupported_clause("with")
    if tokens[0].token_type not in (TokenType.SELECT, TokenType.FROM):
        raise QueryError(
            "a SQL query must be SELECT ... FROM project_logs('<id>') | dataset('<id>') [WHERE ...] "
            "[ORDER BY ...] [LIMIT n] [OFFSET '<cursor>'], or BTQL text starting with a clause such as select:"
        )
    statements = parse_tokens(tokens, text, "query")
    if len(statements) != 1:
        raise QueryError("send exactly one query")
    stmt = statements[0]
    if isinstance(stmt, exp.SetOperation if hasattr(exp, "SetOperation") else exp.Union):
        raise QueryError("UNION, INTERSECT and EXCEPT are not supported by the local data plane")
    if not isinstance(stmt, exp.Select):
        raise QueryError(
            "a SQL query must be SELECT ... FROM project_logs('<id>') | dataset('<id>') [WHERE ...] "
            "[ORDER BY ...] [LIMIT n] [OFFSET '<cursor>']"
        )
    for key, value in stmt.args.items():
        if value and key not in _SELECT_ARGS:
            raise _unsupported_clause(key)
    from_ = stmt.args.get("from_") or stmt.args.get("from")
    if from_ is None:
        raise QueryError("the query needs FROM project_logs('<project id>') or FROM dataset('<dataset id>')")
    if from_.args.get("expressions"):
        raise _unsupported_clause("joins")
    table = from_.this
    shape = None
    if isinstance(table, exp.Subquery):
        raise QueryError("subqueries are not supported by the local data plane")
    if isinstance(table, exp.Table):
        for key, value in table.args.items():
            if value and key not in ("this", "alias"):
                raise _unsupported_clause(key)
        alias = table.args.get("alias")
        if alias is not None:
            name = alias.name
            if alias.args.get("columns") or name.lower() not in SHAPES:
                raise QueryError(
                    f"table aliases are not supported ({name!r}); to choose a shape write "
                    "project_logs('<id>', shape => 'traces')"
                )
            shape = name.lower()
        call = table.this
    else:
        call = table
    source, ref, call_shape = _source_call(call)
    if shape and call_shape and shape != call_shape:
        raise QueryError(f"two different shapes given: {call_shape!r} and {shape!r}")
    where = stmt.args.get("where")
    compiled = compile_node(to_node(where.this), now=now) if where is not None else None
    order = stmt.args.get("order")
    sort = tuple(_ordered(o) for o in order.expressions) if order is not None else ()
    return ParsedQuery(
        source=source,
        object_ref=ref,
        shape=call_shape or shape or "spans",
        select=_select_exprs(stmt.expressions),
        filter=compiled,
        sort=sort,
        limit=_sql_limit(stmt.args.get("limit")),
        cursor=_sql_offset(stmt.args.get("offset")),
    )


def _source_call(call: Any) -> tuple[str, str, str | None]:
    if isinstance(call, (exp.Identifier, exp.Column, exp.Table)) or call is None:
        name = call.name if call is not None else "?"
        raise QueryError(f"write the source as a call with the id: {name}('<id>')")
    if isinstance(call, exp.Anonymous):
        name = call.name
        args = list(call.expressions)
    elif isinstance(call, exp.Func):
        name = call.sql_name().lower()
        args = [a for a in call.args.values() if isinstance(a, _EXPR)]
    else:
        raise QueryError(f"unsupported FROM clause; {_SERVES}")
    source = _source(name)
    positional = []
    shape = None
    for arg in args:
        if isinstance(arg, exp.Kwarg):
            if arg.this.name.lower() != "shape":
                raise QueryError(f"unknown argument {arg.this.name!r} of {source}(); only shape => 'spans'|'traces'|'summary'")
            value = arg.expression
            if not (isinstance(value, exp.Literal) and value.is_string):
                raise QueryError("shape must be a quoted string: shape => 'traces'")
            shape = _shape(value.this)
        else:
            positional.append(arg)
    if len(positional) != 1 or not (isinstance(positional[0], exp.Literal) and positional[0].is_string):
        raise QueryError(f"{source}(...) takes the id as one quoted string: {source}('<id>')")
    return source, _object_ref(positional[0].this, source), shape


def _select_exprs(exprs: list) -> tuple[SelectItem, ...] | None:
    items: list[SelectItem] = []
    for e in exprs:
        if isinstance(e, exp.Star):
            items.append(_STAR)
            continue
        alias = None
        if isinstance(e, exp.Alias):
            alias = e.alias
            e = e.this
        parts = _select_path(e)
        if parts is None:
            raise QueryError(
                "only fields can be selected (e.g. SELECT id, metadata.user_id AS user); "
                "aggregates and expressions are not supported by the local data plane"
            )
        items.append(_select_item(parts, alias))
    return _normalize_select(items)


def _select_path(e: exp.Expr) -> tuple[PathPart, ...] | None:
    if isinstance(e, exp.Literal) and e.is_string:
        return (e.this,)  # a standalone "double-quoted" name
    return path_parts(e)


def _ordered(o: exp.Expr) -> SortItem:
    desc = bool(o.args.get("desc")) if isinstance(o, exp.Ordered) else False
    e = o.this if isinstance(o, exp.Ordered) else o
    return _sort_item(_select_path(e), "desc" if desc else "asc")


def _sql_limit(limit: Any) -> int | None:
    if limit is None:
        return None
    if limit.args.get("offset") is not None:
        raise QueryError("LIMIT a, b is not supported; page with OFFSET '<cursor>'")
    value = limit.expression
    if not (isinstance(value, exp.Literal) and not value.is_string):
        raise QueryError("LIMIT takes a whole number, e.g. LIMIT 100")
    try:
        return _limit(int(value.this))
    except ValueError:
        raise QueryError("LIMIT takes a whole number, e.g. LIMIT 100") from None


def _sql_offset(offset: Any) -> str | None:
    if offset is None:
        return None
    value = offset.expression
    if isinstance(value, exp.Null):
        return None
    if not (isinstance(value, exp.Literal) and value.is_string):
        raise QueryError(
            "OFFSET takes the quoted cursor string from the previous page (OFFSET '<cursor>'); "
            "numeric offsets are not supported"
        )
    return _cursor(value.this)


# ---------------------------------------------------------------------------------------------
# BTQL pipe text

_SUPPORTED_CLAUSES = ("select", "from", "filter", "sort", "limit", "cursor")
_IGNORED_CLAUSES = ("preview_length",)
_UNSUPPORTED_CLAUSES = (
    "dimensions",
    "measures",
    "pivot",
    "unpivot",
    "comparison_key",
    "weighted_scores",
    "custom_columns",
    "sample",
    "span_filter",
    "trace_filter",
)
_KNOWN_CLAUSES = _SUPPORTED_CLAUSES + _IGNORED_CLAUSES + _UNSUPPORTED_CLAUSES
_CLAUSE_HEAD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:(?!:)")


def _split_pipe(text: str) -> list[tuple[str, str]]:
    """Split BTQL pipe text into (clause, content), honouring quotes; `|` or new lines separate."""
    clauses: list[tuple[str, str]] = []
    name: str | None = None
    start = 0
    quote: str | None = None
    boundary = "start"  # "start" | "pipe" | "newline" | None
    i = 0
    n = len(text)

    def close(end: int) -> None:
        if name is not None:
            clauses.append((name, text[start:end]))

    while i < n:
        char = text[i]
        if quote:
            if char == "\\" and quote != "`":
                i += 2
                continue
            if char == quote:
                if i + 1 < n and text[i + 1] == quote:
                    i += 2
                    continue
                quote = None
            i += 1
            continue
        if boundary:
            match = _CLAUSE_HEAD.match(text, i)
            word = match.group(1).lower() if match else None
            if word in _KNOWN_CLAUSES:
                close(i)
                name, start = word, match.end()  # type: ignore[union-attr]
                i = match.end()  # type: ignore[union-attr]
                boundary = None
                continue
            if boundary in ("start", "pipe") and text[i:].strip():
                found = f"'{match.group(1)}:'" if match else repr(text[i:].strip()[:20])
                raise QueryError(
                    f"expected a BTQL clause ({', '.join(c + ':' for c in _SUPPORTED_CLAUSES)}) "
                    f"{'at the start' if boundary == 'start' else 'after |'}, found {found}"
                )
            boundary = None
        if char in "'\"`":
            quote = char
        elif char == "|":
            close(i)
            name = None
            boundary = "pipe"
        elif char == "\n":
            boundary = "newline"
        i += 1
    if quote:
        raise QueryError("unterminated quote in the query")
    if boundary == "pipe":
        raise QueryError("the query ends with '|'; remove it or add a clause")
    close(n)
    return clauses


def _from_pipe(text: str, now: datetime) -> ParsedQuery:
    clauses: dict[str, str] = {}
    for name, content in _split_pipe(text):
        if name in _UNSUPPORTED_CLAUSES:
            raise QueryError(f"the {name}: clause is not supported by the local data plane")
        if name in _IGNORED_CLAUSES:
            continue
        if name in clauses:
            raise QueryError(f"the {name}: clause appears twice; give it once")
        clauses[name] = content
    if "from" not in clauses:
        raise QueryError("the query needs a from: clause, e.g. from: project_logs('<project id>') spans")
    source, ref, shape = _pipe_from(clauses["from"])
    select = _pipe_select(clauses["select"]) if "select" in clauses else None
    compiled = None
    if "filter" in clauses:
        compiled = compile_node(parse_expression(clauses["filter"]), now=now)
    sort = _pipe_sort(clauses["sort"]) if "sort" in clauses else ()
    limit = None
    if "limit" in clauses:
        raw = clauses["limit"].strip()
        if not re.fullmatch(r"[0-9]+", raw):
            raise QueryError(f"limit: takes a whole number, got {raw!r}")
        limit = int(raw)
    cursor = _pipe_cursor(clauses["cursor"]) if "cursor" in clauses else None
    return ParsedQuery(source, ref, shape, select, compiled, sort, limit, cursor)


def _pipe_from(content: str) -> tuple[str, str, str]:
    tokens = tokenize(content, "from: clause")
    shape = None
    if len(tokens) > 1 and tokens[-1].token_type == TokenType.VAR and tokens[-1].text.lower() in SHAPES:
        shape = tokens[-1].text.lower()
        tokens = tokens[:-1]
    if not tokens:
        raise QueryError("from: needs a source, e.g. from: project_logs('<project id>') spans")
    call = single_expression(tokens, content, "from: clause")
    source, ref, call_shape = _source_call(call)
    if shape and call_shape and shape != call_shape:
        raise QueryError(f"two different shapes given: {call_shape!r} and {shape!r}")
    return source, ref, call_shape or shape or "spans"


def _pipe_select(content: str) -> tuple[SelectItem, ...] | None:
    tokens = tokenize(content, "select: clause")
    if not tokens:
        raise QueryError("select: is empty; use select: * or name fields")
    head = Token(TokenType.SELECT, "SELECT")
    parsed = parse_tokens([head] + tokens, content, "select: clause")
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select):
        raise QueryError("select: takes a list of fields, e.g. select: id, metadata.user_id AS user")
    for key, value in parsed[0].args.items():
        if value and key != "expressions":
            raise QueryError("select: takes only a list of fields; put other parts in their own clauses")
    return _select_exprs(parsed[0].expressions)


def _pipe_sort(content: str) -> tuple[SortItem, ...]:
    tokens = tokenize(content, "sort: clause")
    groups: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        if token.token_type == TokenType.COMMA and depth == 0:
            groups.append([])
        else:
            groups[-1].append(token)
    out = []
    for group in groups:
        direction = "asc"
        if group and group[-1].token_type in (TokenType.ASC, TokenType.DESC):
            direction = group[-1].text.lower()
            group = group[:-1]
        if not group:
            raise QueryError("sort: needs a field, e.g. sort: _pagination_key desc")
        expr = single_expression(group, content, "sort: clause")
        out.append(_sort_item(_select_path(expr), direction))
    return tuple(out)


def _pipe_cursor(content: str) -> str | None:
    raw = content.strip()
    if not raw or raw.lower() == "null":
        return None
    if raw[0] in "'\"":
        tokens = tokenize(raw, "cursor: clause")
        if len(tokens) != 1 or tokens[0].token_type not in (TokenType.STRING, TokenType.IDENTIFIER):
            raise QueryError("cursor: takes one quoted string, e.g. cursor: '<cursor>'")
        return _cursor(tokens[0].text)
    return raw
