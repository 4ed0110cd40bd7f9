"""Compile filters (SQL/BTQL text or a JSON expression tree) into a SQLite boolean expression.

The result is a :class:`CompiledFilter`: SQL over the ``rows`` table aliased ``r`` (see
docs/ARCHITECTURE.md) plus its ``?`` parameters. Nothing the user typed is pasted into the SQL:
values are parameters, fields come from a fixed column map or become
``json_extract(r.data, '$."a"."b"')`` with a path built here from validated keys.

Semantics (Braintrust's, as in docs/BT_COMPAT.md, "filter semantics"):

- Field paths: ``id``, ``created``, ``root_span_id``, ``span_id``, ``_xact_id`` (INTEGER; string
  literals are cast), ``_pagination_key``, ``is_root`` (0/1) are columns; ``duration`` is
  ``metrics.end - metrics.start``; ``comment`` is an alias of ``comments``; everything else is a
  JSON path into ``r.data`` (dots, ``['key']``, ``"quoted"`` segments, ``[0]``, ``[-1]`` from the end).
- A missing path or a JSON ``null`` is NULL; a comparison with NULL is not true, and neither is
  its negation (SQL three-valued logic), so ``metadata.x != 'a'`` does not match rows without x.
- Comparisons of a JSON value with a literal are typed: they hold only when the JSON value has
  the literal's type (string, number, or boolean); otherwise they are NULL like a missing value.
  So ``metadata.flagged = true`` does not match the number 1 or the string "true", and
  ``metadata.flagged != true`` matches only JSON ``false``.
- ``created`` compares as time: ISO strings (``'2026-01-01'``, ``'...Z'``, ``'+02:00'``) and
  ``now() - interval 7 day`` become canonical UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
- ``x IN (...)``: membership, typed as above; when x holds an array, true if any element is in
  the list. ``'v' IN tags`` (a field on the right) is array membership, like ``tags INCLUDES 'v'``.
- ``INCLUDES`` / ``CONTAINS``: an array (or object's values) holds the value; a list on the right
  means all of its items; an object on the right (JSON AST only) means those keys hold those
  values. On a missing or null field the result is NULL, so ``NOT INCLUDES`` does not match it.
- ``LIKE`` is case-sensitive and ``ILIKE`` case-insensitive (Unicode case pairs). Both match the
  whole text with ``%`` and ``_``; a backslash escapes ``%``, ``_`` or ``\\``. They compile to
  SQLite ``GLOB`` with a translated pattern (``PRAGMA case_sensitive_like`` would be global).
  On an object or array field they match its JSON text.
- ``MATCH 'words'``: every word of the query must start a word of the field's text
  (case-insensitive; for objects and arrays the JSON text, keys included), so ``tags MATCH
  'value'`` matches ``value-added`` and ``output MATCH 'refund'`` matches "Refunds".
- A field standing alone as a condition (``metadata.flagged``, ``NOT is_root``) means "is true".
- Arithmetic ``+ - * / %`` works on numbers (``/`` is real division, ``%`` keeps fractions like
  C ``fmod``; dividing by zero is NULL). Time arithmetic happens on constants only:
  ``now() - interval 7 day`` is folded at compile time with the ``now`` given by the caller;
  ``current_date`` is midnight UTC of ``now`` (``tz_offset`` is not applied).
- ``comments`` is read from ``r.data`` like any other field, so the store must keep a row's
  aggregated ``comments`` array in its ``data`` for ``comments IS NOT NULL`` to work.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from collections.abc import Iterator
from typing import Any, Union

from .errors import QueryError
from .nodes import (
    ARITHMETIC,
    COMPARISONS,
    Between,
    BinOp,
    IntervalLit,
    IsBool,
    IsNull,
    ListExpr,
    Lit,
    Logic,
    Neg,
    Node,
    Not,
    Now,
    Path,
    PathPart,
    Today,
    from_json,
)
from .syntax import parse_expression
from .times import Interval, as_utc, canonical, parse_timestamp, shift, start_of_day

__all__ = ["CompiledFilter", "compile_filter_text", "compile_filter_tree", "compile_node", "and_filters"]

MAX_PARAMS = 30000  # SQLite accepts at most 32766 parameters per statement; leave room for the caller's


@dataclass(frozen=True)
class CompiledFilter:
    """A SQLite boolean expression over the ``rows`` table aliased ``r``, with ``?`` parameters.

    Use it as ``f"SELECT ... FROM rows AS r WHERE ... AND ({f.sql})"`` with ``f.params`` in order.
    """

    sql: str
    params: list = field(default_factory=list)
    # Bounds on `created` (canonical ISO text) implied by the filter's top-level AND: every row
    # that matches has lower <= created <= upper. The store turns them into an index range.
    created_range: tuple[str | None, str | None] = (None, None)
    # True when a top-level AND term names rows by key (`id` or `root_span_id` = / IN literals):
    # the store then finds them through that key's index and sorts the few it finds, instead of
    # walking the sort order's index over the whole object (a trace fetch of 100 roots).
    keyed: bool = False


def compile_filter_text(text: str, *, now: datetime) -> CompiledFilter:
    """Compile a SQL or BTQL filter expression, e.g. ``"metadata.flagged = true AND created > now() - interval 7 day"``.

    ``now`` is the time ``now()``/``current_timestamp`` stand for (naive datetimes are UTC).
    Raises :class:`QueryError` for anything malformed or unsupported.
    """
    try:
        return compile_node(parse_expression(text), now=now)
    except RecursionError:
        raise QueryError("the filter is nested too deeply; simplify it") from None


def compile_filter_tree(node: dict, *, now: datetime) -> CompiledFilter:
    """Compile a JSON AST filter (``{"op": "and", "children": [...]}``, ``{"btql": "<text>"}`` leaves, ...).

    A plain string is accepted too and read as filter text.
    """
    if isinstance(node, str):
        return compile_filter_text(node, now=now)
    try:
        return compile_node(from_json(node, parse_expression), now=now)
    except RecursionError:
        raise QueryError("the filter is nested too deeply; simplify it") from None


def compile_node(node: Node, *, now: datetime) -> CompiledFilter:
    """Compile an already-read filter tree (see ``nodes.py``); used by ``parse.py``."""
    if not isinstance(now, datetime):
        raise TypeError("now must be a datetime")
    compiler = _Compiler(now)
    pred = compiler.as_pred(compiler.operand(node))
    if len(pred.params) > MAX_PARAMS:
        raise QueryError(
            f"the filter is too large ({len(pred.params)} values, at most {MAX_PARAMS}); split it into several queries"
        )
    return CompiledFilter(pred.sql, list(pred.params), _created_range(node, now), _keyed(node))


def _conjuncts(node: Node) -> Iterator[Node]:
    if isinstance(node, Logic) and node.op == "and":
        for child in node.children:
            yield from _conjuncts(child)
    else:
        yield node


_KEY_PATHS = (Path(("id",)), Path(("root_span_id",)))


def _keyed(node: Node) -> bool:
    """Whether a top-level AND term is `id` / `root_span_id` compared (=, IN) with literals."""
    for term in _conjuncts(node):
        if isinstance(term, BinOp) and term.op in ("eq", "in"):
            sides = (term.left, term.right)
            if any(side in _KEY_PATHS for side in sides) and not all(isinstance(side, Path) for side in sides):
                return True
    return False


def _created_range(node: Node, now: datetime) -> tuple[str | None, str | None]:
    """The tightest `created` bounds among top-level AND terms like `created >= <time>`."""
    lower: str | None = None
    upper: str | None = None
    for term in _conjuncts(node):
        if not isinstance(term, BinOp) or term.op not in ("eq", "lt", "le", "gt", "ge"):
            continue
        op, other = term.op, term.right
        if term.left != Path(("created",)):
            if term.right != Path(("created",)):
                continue
            op, other = _FLIP[op], term.left
        try:  # the compiler evaluates the other side (e.g. now() - interval 7 day) as a parameter
            compiled = _Compiler(now).as_pred(_Compiler(now).operand(BinOp(op, Path(("created",)), other)))
        except QueryError:
            continue
        if compiled.sql != f"r.created {_SQL_OP[op]} ?" or not isinstance(compiled.params[0], str):
            continue
        bound = compiled.params[0]
        if op in ("ge", "gt", "eq"):
            lower = bound if lower is None else max(lower, bound)
        if op in ("le", "lt", "eq"):
            upper = bound if upper is None else min(upper, bound)
    return lower, upper


def and_filters(*filters: CompiledFilter | None) -> CompiledFilter | None:
    """AND together the given filters, skipping ``None``; ``None`` if there are none."""
    present = [f for f in filters if f is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    params: list = []
    for f in present:
        params.extend(f.params)
    lowers = [f.created_range[0] for f in present if f.created_range[0] is not None]
    uppers = [f.created_range[1] for f in present if f.created_range[1] is not None]
    created_range = (max(lowers) if lowers else None, min(uppers) if uppers else None)
    return CompiledFilter(" AND ".join(f"({f.sql})" for f in present), params, created_range,
                          any(f.keyed for f in present))


# ---------------------------------------------------------------------------------------------
# operands


@dataclass(frozen=True)
class _Const:
    """A compile-time value: None, bool, int, float, str, datetime, Interval, list or dict."""

    value: Any


@dataclass(frozen=True)
class _Json:
    """A JSON path into ``r.data`` (SQLite path syntax, e.g. ``$."metadata"."flagged"``)."""

    path: str
    label: str

    @property
    def lit(self) -> str:
        return "'" + self.path.replace("'", "''") + "'"

    @property
    def value(self) -> str:
        return f"json_extract(r.data, {self.lit})"

    @property
    def type(self) -> str:
        return f"json_type(r.data, {self.lit})"


@dataclass(frozen=True)
class _Expr:
    """A SQL value: a column or a computed number. kind: text, time, int, number or bool."""

    sql: str
    params: tuple
    kind: str
    label: str


@dataclass(frozen=True)
class _Pred:
    """A SQL boolean expression (1, 0 or NULL)."""

    sql: str
    params: tuple = ()


_Operand = Union[_Const, _Json, _Expr, _Pred]

_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("r.id", "text"),
    "created": ("r.created", "time"),
    "root_span_id": ("r.root_span_id", "text"),
    "span_id": ("r.span_id", "text"),
    "_xact_id": ("r.xact_id", "int"),
    "_pagination_key": ("r.pagination_key", "text"),
    "is_root": ("r.is_root", "bool"),
}
_ALIASES = {"comment": "comments"}

_SQL_OP = {"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_ARITH_SQL = {"add": "+", "sub": "-", "mul": "*"}
# JSON type names (json_type) per value kind
_JSON_TYPES = {"text": "('text')", "number": "('integer', 'real')", "bool": "('true', 'false')"}
# the JSON kind to read when comparing a JSON value with a column of a kind
_JSON_KIND_FOR = {"text": "text", "time": "text", "int": "number", "number": "number", "bool": "bool"}

_TRUE, _FALSE, _NULL = _Pred("1"), _Pred("0"), _Pred("NULL")


def _join(sqls: list[str], connective: str) -> str:
    """``(a AND b AND ...)``, nested as a balanced tree when long: SQLite parses a flat chain
    left-deep and refuses expressions deeper than 1000."""
    if len(sqls) <= 32:
        return "(" + f" {connective} ".join(sqls) + ")"
    size = -(-len(sqls) // 32)  # ceil: at most 32 groups per level
    return _join([_join(sqls[i : i + size], connective) for i in range(0, len(sqls), size)], connective)


def _const_pred(value: bool | None) -> _Pred:
    return _NULL if value is None else (_TRUE if value else _FALSE)


def _typed(json: _Json, kind: str) -> str:
    """The JSON value if it has ``kind`` (text, number, bool), else NULL."""
    return f"CASE WHEN {json.type} IN {_JSON_TYPES[kind]} THEN {json.value} END"


def _type_class(json: _Json) -> str:
    return (
        f"CASE {json.type} WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
        f"WHEN 'true' THEN 'bool' WHEN 'false' THEN 'bool' WHEN 'text' THEN 'text' END"
    )


def _json_path(parts: tuple[PathPart, ...]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]" if part >= 0 else f"[#{part}]"
        else:
            if '"' in part:
                raise QueryError(f"field names containing a double quote are not supported: {part!r}")
            out += '."' + part + '"'
    return out


def _label(parts: tuple[PathPart, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += ("." if out else "") + part
        else:
            out += "[" + repr(part) + "]"
    return out


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "time"
    if isinstance(value, Interval):
        return "interval"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sql_number(value: int | float) -> int | float:
    """SQLite integers are 64-bit; larger Python ints are passed as floats."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def _ci_char(char: str) -> str:
    variants = [char]
    for other in (char.lower(), char.upper()):
        if len(other) == 1 and other not in variants:
            variants.append(other)
    return "[" + "".join(variants) + "]" if len(variants) > 1 else char


def _glob_char(char: str, insensitive: bool) -> str:
    if char in "*?[":
        return f"[{char}]"
    return _ci_char(char) if insensitive else char


def like_to_glob(pattern: str, *, insensitive: bool) -> str:
    """Translate a LIKE pattern (``%``, ``_``, backslash escapes) to a SQLite GLOB pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(_glob_char(pattern[i + 1], insensitive))
            i += 2
            continue
        if char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_char(char, insensitive))
        i += 1
    return "".join(out)


def _c_mod(a: float, b: float) -> float:
    result = math.fmod(a, b)
    return int(result) if isinstance(a, int) and isinstance(b, int) else result


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = as_utc(now)
        self._aliases = 0

    def _alias(self) -> str:
        self._aliases += 1
        return f"je{self._aliases}"

    # -- nodes ---------------------------------------------------------------------------------

    def operand(self, node: Node) -> _Operand:
        if isinstance(node, Path):
            return self.path(node.parts)
        if isinstance(node, Lit):
            return _Const(node.value)
        if isinstance(node, IntervalLit):
            return _Const(node.interval)
        if isinstance(node, Now):
            return _Const(self.now)
        if isinstance(node, Today):
            return _Const(start_of_day(self.now))
        if isinstance(node, BinOp):
            return self.binop(node)
        if isinstance(node, Logic):
            preds = [self.as_pred(self.operand(child)) for child in node.children]
            if not preds:
                return _TRUE if node.op == "and" else _FALSE
            if len(preds) == 1:
                return preds[0]
            sql = _join([p.sql for p in preds], "AND" if node.op == "and" else "OR")
            return _Pred(sql, tuple(x for p in preds for x in p.params))
        if isinstance(node, Not):
            pred = self.as_pred(self.operand(node.expr))
            return _Pred(f"NOT ({pred.sql})", pred.params)
        if isinstance(node, Neg):
            return self.negate(self.operand(node.expr))
        if isinstance(node, IsNull):
            return self.is_null(self.operand(node.expr), node.negate)
        if isinstance(node, IsBool):
            return self.is_bool(self.operand(node.expr), node.value, node.negate)
        if isinstance(node, Between):
            value = self.operand(node.expr)
            low = self.compare("ge", value, self.operand(node.low))
            high = self.compare("le", value, self.operand(node.high))
            return _Pred(f"({low.sql} AND {high.sql})", low.params + high.params)
        if isinstance(node, ListExpr):
            raise QueryError("a list of values is only allowed after IN: x IN ('a', 'b')")
        raise QueryError(f"unsupported filter node {type(node).__name__}")  # pragma: no cover

    def binop(self, node: BinOp) -> _Operand:
        op = node.op
        if op == "in":
            return self.in_(node.left, node.right)
        left = self.operand(node.left)
        right = self.operand(node.right)
        if op in COMPARISONS:
            return self.compare(op, left, right)
        if op in ARITHMETIC:
            return self.arith(op, left, right)
        if op in ("like", "ilike"):
            return self.like(left, right, insensitive=op == "ilike")
        if op == "match":
            return self.match(left, right)
        if op == "includes":
            return self.includes(left, right)
        raise QueryError(f"unknown operator {op!r}")  # pragma: no cover

    def path(self, parts: tuple[PathPart, ...]) -> _Operand:
        head = parts[0]
        if not isinstance(head, str):
            raise QueryError("a field path must start with a field name, e.g. tags[0]")
        head = _ALIASES.get(head, head)
        if head in _COLUMNS or head == "duration":
            if len(parts) > 1:
                raise QueryError(f"{head} is a plain value and has no fields; remove what follows {head}")
            if head == "duration":
                end = _Json(_json_path(("metrics", "end")), "metrics.end")
                start = _Json(_json_path(("metrics", "start")), "metrics.start")
                return _Expr(f"({_typed(end, 'number')} - {_typed(start, 'number')})", (), "number", "duration")
            column, kind = _COLUMNS[head]
            return _Expr(column, (), kind, head)
        full = (head,) + tuple(parts[1:])
        return _Json(_json_path(full), _label(full))

    # -- conditions ----------------------------------------------------------------------------

    def as_pred(self, operand: _Operand) -> _Pred:
        if isinstance(operand, _Pred):
            return operand
        if isinstance(operand, _Json):
            return _Pred(f"{operand.type} = 'true'")
        if isinstance(operand, _Expr) and operand.kind == "bool":
            return _Pred(f"{operand.sql} = 1", operand.params)
        if isinstance(operand, _Const) and (operand.value is None or isinstance(operand.value, bool)):
            return _const_pred(operand.value)
        what = operand.label if isinstance(operand, (_Json, _Expr)) else repr(operand.value)
        raise QueryError(f"expected a condition such as x = 1, but found the value {what}")

    def is_null(self, operand: _Operand, negate: bool) -> _Pred:
        test = "IS NOT NULL" if negate else "IS NULL"
        if isinstance(operand, _Const):
            return _const_pred((operand.value is None) != negate)
        if isinstance(operand, _Json):
            return _Pred(f"{operand.value} {test}")
        return _Pred(f"({operand.sql}) {test}", operand.params)

    def is_bool(self, operand: _Operand, value: bool, negate: bool) -> _Pred:
        if isinstance(operand, _Pred):
            cond = operand if value else _Pred(f"NOT ({operand.sql})", operand.params)
        else:
            cond = self.compare("eq", operand, _Const(value))
        sql = f"COALESCE({cond.sql}, 0)"
        return _Pred(f"NOT {sql}" if negate else sql, cond.params)

    def compare(self, op: str, left: _Operand, right: _Operand) -> _Pred:
        if isinstance(left, _Pred) or isinstance(right, _Pred):
            raise QueryError("cannot compare a condition with a value; compare fields with values, e.g. x = 1")
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _const_pred(self.fold_compare(op, left.value, right.value))
        if isinstance(left, _Const):
            left, right, op = right, left, _FLIP[op]
        sql_op = _SQL_OP[op]
        if isinstance(right, _Const):
            value = right.value
            if value is None:
                return _NULL  # x = NULL is never true: use IS NULL
            if isinstance(left, _Json):
                kind, param = self.json_param(value, left.label)
                return _Pred(f"{_typed(left, kind)} {sql_op} ?", (param,))
            assert isinstance(left, _Expr)
            return _Pred(f"{left.sql} {sql_op} ?", left.params + (self.column_param(left, value),))
        if isinstance(left, _Json) and isinstance(right, _Json):
            return _Pred(
                f"CASE WHEN {_type_class(left)} = {_type_class(right)} THEN {left.value} {sql_op} {right.value} END"
            )
        if isinstance(left, _Json):
            assert isinstance(right, _Expr)
            return _Pred(f"{_typed(left, _JSON_KIND_FOR[right.kind])} {sql_op} {right.sql}", right.params)
        if isinstance(right, _Json):
            return _Pred(f"{left.sql} {sql_op} {_typed(right, _JSON_KIND_FOR[left.kind])}", left.params)
        return _Pred(f"{left.sql} {sql_op} {right.sql}", left.params + right.params)

    def fold_compare(self, op: str, a: Any, b: Any) -> bool | None:
        if a is None or b is None:
            return None
        if isinstance(a, datetime) and isinstance(b, str):
            b = parse_timestamp(b)
        elif isinstance(b, datetime) and isinstance(a, str):
            a = parse_timestamp(a)
        for value in (a, b):
            if isinstance(value, (Interval, list, dict)):
                raise QueryError(f"cannot compare a {_kind_of(value)} with =, <, >; compare single values")
        if _kind_of(a) != _kind_of(b):
            return None
        if isinstance(a, datetime):
            a, b = as_utc(a), as_utc(b)
        return {
            "eq": a == b,
            "ne": a != b,
            "lt": a < b,
            "le": a <= b,
            "gt": a > b,
            "ge": a >= b,
        }[op]

    def json_param(self, value: Any, label: str) -> tuple[str, Any]:
        """(JSON kind, parameter) for comparing a JSON field with a literal."""
        if isinstance(value, bool):
            return "bool", int(value)
        if _is_number(value):
            return "number", _sql_number(value)
        if isinstance(value, str):
            return "text", value
        if isinstance(value, datetime):
            return "text", canonical(value)
        if isinstance(value, Interval):
            raise QueryError(
                "an interval must be added to or subtracted from a time, e.g. created > now() - interval 7 day"
            )
        raise QueryError(
            f"cannot compare {label} with a {_kind_of(value)}; use IN ('a', 'b') for lists, "
            "or INCLUDES to test what an array holds"
        )

    def column_param(self, column: _Expr, value: Any) -> Any:
        """The parameter for comparing a column (or computed value) with a literal."""
        kind, label = column.kind, column.label
        if isinstance(value, (Interval, list, dict)):
            if isinstance(value, Interval):
                self.json_param(value, label)  # raises the interval message
            raise QueryError(f"cannot compare {label} with a {_kind_of(value)}; use IN ('a', 'b') for lists")
        if kind == "time":
            if isinstance(value, datetime):
                return canonical(value)
            if isinstance(value, str):
                return canonical(parse_timestamp(value))
            raise QueryError(
                f"{label} is a timestamp: compare it with an ISO time such as '2026-01-01T00:00:00Z' "
                "or with now() - interval 1 day"
            )
        if kind == "int":
            if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
                return _sql_number(int(value.strip()))
            if isinstance(value, int) and not isinstance(value, bool):
                return _sql_number(value)
            if isinstance(value, float) and value.is_integer():
                return _sql_number(int(value))
            raise QueryError(f"{label} is a whole number (a transaction id); compare it with e.g. '1000192656880881099'")
        if kind == "number":
            if _is_number(value):
                return _sql_number(value)
            raise QueryError(f"{label} is a number; compare it with a number, e.g. {label} < 2.5")
        if kind == "bool":
            if isinstance(value, bool):
                return int(value)
            if _is_number(value) and value in (0, 1):
                return int(value)
            raise QueryError(f"{label} is true or false; compare it with true or false")
        # text columns
        if isinstance(value, bool):
            raise QueryError(f"{label} is text; compare it with a quoted string")
        if isinstance(value, datetime):
            return canonical(value)
        return _sql_number(value) if _is_number(value) else value

    # -- IN, INCLUDES, LIKE, MATCH -------------------------------------------------------------

    def in_(self, left_node: Node, right_node: Node) -> _Pred:
        left = self.operand(left_node)
        if isinstance(right_node, ListExpr):
            items = [self.operand(item) for item in right_node.items]
            if all(isinstance(item, _Const) for item in items):
                return self.in_values(left, [item.value for item in items])  # type: ignore[union-attr]
            preds = [self.compare("eq", left, item) for item in items]
            return _Pred(_join([p.sql for p in preds], "OR"), tuple(x for p in preds for x in p.params))
        right = self.operand(right_node)
        if isinstance(right, _Const):
            values = right.value if isinstance(right.value, list) else [right.value]
            return self.in_values(left, values)
        if isinstance(right, _Json):
            if isinstance(left, _Const) and not isinstance(left.value, (list, dict)):
                return self.includes(right, left)
            raise QueryError(
                f"'x IN {right.label}' needs a literal on the left, e.g. 'annotated' IN {right.label}"
            )
        raise QueryError("IN needs a list on the right: x IN ('a', 'b') or x IN ['a', 'b']")

    def in_values(self, left: _Operand, values: list) -> _Pred:
        has_null = any(v is None for v in values)
        values = [v for v in values if v is not None]
        if isinstance(left, _Pred):
            raise QueryError("the left side of IN must be a field or a value, not a condition")
        if isinstance(left, _Const):
            results = [self.fold_compare("eq", left.value, v) for v in values]
            if any(results):
                return _TRUE
            return _NULL if (has_null or left.value is None or None in results) else _FALSE
        if not values:
            if has_null:
                return _NULL
            value_sql = left.value if isinstance(left, _Json) else left.sql
            params = () if isinstance(left, _Json) else left.params
            return _Pred(f"CASE WHEN {value_sql} IS NOT NULL THEN 0 END", params)
        if isinstance(left, _Json):
            groups: dict[str, list] = {}
            for value in values:
                kind, param = self.json_param(value, left.label)
                groups.setdefault(kind, []).append(param)
            alias = self._alias()
            each = " OR ".join(
                f"({alias}.type IN {_JSON_TYPES[kind]} AND {alias}.value IN ({', '.join('?' * len(ps))}))"
                for kind, ps in groups.items()
            )
            scalar_parts = [f"{_typed(left, kind)} IN ({', '.join('?' * len(ps))})" for kind, ps in groups.items()]
            if len(scalar_parts) == 1:
                scalar = scalar_parts[0]
            else:
                classes = ", ".join(f"'{k}'" for k in groups)
                scalar = (
                    f"CASE WHEN {_type_class(left)} IN ({classes}) THEN ("
                    + " OR ".join(f"COALESCE({part}, 0)" for part in scalar_parts)
                    + ") END"
                )
            params = tuple(p for ps in groups.values() for p in ps)
            sql = (
                f"CASE WHEN {left.type} = 'array' THEN EXISTS (SELECT 1 FROM json_each(r.data, {left.lit}) "
                f"AS {alias} WHERE {each}) ELSE {scalar} END"
            )
            pred = _Pred(sql, params + params)
        else:
            params = tuple(self.column_param(left, v) for v in values)
            pred = _Pred(f"{left.sql} IN ({', '.join('?' * len(params))})", left.params + params)
        if has_null:
            return _Pred(f"CASE WHEN {pred.sql} THEN 1 END", pred.params)
        return pred

    def includes(self, left: _Operand, right: _Operand) -> _Pred:
        if not isinstance(left, _Json):
            raise QueryError(
                "INCLUDES / CONTAINS works on array or object fields, e.g. tags INCLUDES 'annotated'"
            )
        if not isinstance(right, _Const):
            raise QueryError("INCLUDES / CONTAINS needs a literal on the right, e.g. tags INCLUDES 'annotated'")
        if right.value is None:
            return _NULL
        sql, params = self._contains(left, right.value)
        return _Pred(f"CASE WHEN {left.value} IS NULL THEN NULL ELSE {sql} END", params)

    def _contains(self, field_: _Json, value: Any) -> tuple[str, tuple]:
        if isinstance(value, list):
            if not value:
                return "1", ()
            parts = [self._contains(field_, item) for item in value]
            return _join([p[0] for p in parts], "AND"), tuple(x for p in parts for x in p[1])
        if isinstance(value, dict):
            if not value:
                return f"({field_.type} = 'object')", ()
            parts = []
            for key, item in value.items():
                sub = _Json(field_.path + _json_path((str(key),))[1:], f"{field_.label}.{key}")
                if isinstance(item, (list, dict)):
                    parts.append(self._contains(sub, item))
                elif item is None:
                    parts.append((f"({sub.type} = 'null')", ()))
                else:
                    kind, param = self.json_param(item, sub.label)
                    parts.append((f"COALESCE({_typed(sub, kind)} = ?, 0)", (param,)))
            return _join([p[0] for p in parts], "AND"), tuple(x for p in parts for x in p[1])
        kind, param = self.json_param(value, field_.label)
        alias = self._alias()
        return (
            f"EXISTS (SELECT 1 FROM json_each(r.data, {field_.lit}) AS {alias} "
            f"WHERE {alias}.type IN {_JSON_TYPES[kind]} AND {alias}.value = ?)",
            (param,),
        )

    def _text(self, operand: _Operand, what: str) -> tuple[str, tuple]:
        if isinstance(operand, _Json):
            return operand.value, ()
        if isinstance(operand, _Expr):
            return operand.sql, operand.params
        raise QueryError(f"{what} needs a field on the left, e.g. input {what} '...'")

    def like(self, left: _Operand, right: _Operand, *, insensitive: bool) -> _Pred:
        op = "ILIKE" if insensitive else "LIKE"
        if not (isinstance(right, _Const) and isinstance(right.value, str)):
            raise QueryError(f"{op} needs a quoted pattern on the right, e.g. input {op} '%refund%'")
        if isinstance(left, _Const):
            if left.value is None:
                return _NULL
            if not isinstance(left.value, str):
                raise QueryError(f"{op} needs a field or a string on the left")
            pattern = like_to_glob(right.value, insensitive=insensitive)
            return _Pred("? GLOB ?", (left.value, pattern))
        text, params = self._text(left, op)
        return _Pred(f"{text} GLOB ?", params + (like_to_glob(right.value, insensitive=insensitive),))

    def match(self, left: _Operand, right: _Operand) -> _Pred:
        if not (isinstance(right, _Const) and isinstance(right.value, str)):
            raise QueryError("MATCH needs quoted words on the right, e.g. output MATCH 'refund'")
        words = re.findall(r"\w+", right.value)
        if not words:
            raise QueryError("MATCH needs at least one word, e.g. output MATCH 'refund'")
        text, params = self._text(left, "MATCH")
        parts = []
        all_params: tuple = ()
        for word in words:
            folded = "".join(_glob_char(c, True) for c in word)
            parts.append(f"({text} GLOB ? OR {text} GLOB ?)")
            all_params += params + (folded + "*",) + params + ("*[^A-Za-z0-9_]" + folded + "*",)
        sql = parts[0] if len(parts) == 1 else _join(parts, "AND")
        return _Pred(sql, all_params)

    # -- arithmetic ----------------------------------------------------------------------------

    def arith(self, op: str, left: _Operand, right: _Operand) -> _Operand:
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _Const(self.fold_arith(op, left.value, right.value))
        for side in (left, right):
            if isinstance(side, _Const) and isinstance(side.value, (Interval, datetime)):
                raise QueryError(
                    "time arithmetic works on constants only: write created > now() - interval 7 day, "
                    "not created + interval 7 day > now()"
                )
        left_sql, left_params = self._number(left)
        right_sql, right_params = self._number(right)
        params = left_params + right_params
        if op == "div":
            sql = f"(CAST({left_sql} AS REAL) / {right_sql})"
        elif op == "mod":
            # SQLite's % truncates its operands to integers; this keeps fractions (C fmod)
            sql = f"({left_sql} - {right_sql} * CAST({left_sql} / {right_sql} AS INTEGER))"
            params = params + params
        else:
            sql = f"({left_sql} {_ARITH_SQL[op]} {right_sql})"
        return _Expr(sql, params, "number", "the arithmetic expression")

    def _number(self, operand: _Operand) -> tuple[str, tuple]:
        if isinstance(operand, _Const):
            if operand.value is None:
                return "NULL", ()
            if _is_number(operand.value):
                return "?", (_sql_number(operand.value),)
            raise QueryError(f"arithmetic needs numbers, got the {_kind_of(operand.value)} {operand.value!r}")
        if isinstance(operand, _Json):
            return _typed(operand, "number"), ()
        if isinstance(operand, _Expr) and operand.kind in ("int", "number"):
            return operand.sql, operand.params
        if isinstance(operand, _Expr):
            raise QueryError(f"arithmetic needs numbers; {operand.label} is not a number")
        raise QueryError("arithmetic needs numbers, not a condition")

    def fold_arith(self, op: str, a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        if _is_number(a) and _is_number(b):
            if op == "add":
                return a + b
            if op == "sub":
                return a - b
            if op == "mul":
                return a * b
            if b == 0:
                return None
            return a / b if op == "div" else _c_mod(a, b)
        if isinstance(a, datetime) and isinstance(b, Interval) and op in ("add", "sub"):
            return shift(a, b if op == "add" else -b)
        if isinstance(a, Interval) and isinstance(b, datetime) and op == "add":
            return shift(b, a)
        if isinstance(a, Interval) and isinstance(b, Interval) and op in ("add", "sub"):
            return a + (b if op == "add" else -b)
        if isinstance(a, Interval) and _is_number(b) and op in ("mul", "div"):
            if op == "div" and b == 0:
                raise QueryError("cannot divide an interval by zero")
            return a.scaled(b if op == "mul" else 1 / b)
        if _is_number(a) and isinstance(b, Interval) and op == "mul":
            return b.scaled(a)
        if isinstance(a, str) and isinstance(b, Interval) and op in ("add", "sub"):
            return shift(parse_timestamp(a), b if op == "add" else -b)
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}[op]
        raise QueryError(f"cannot compute {_kind_of(a)} {symbol} {_kind_of(b)}")

    def negate(self, operand: _Operand) -> _Operand:
        if isinstance(operand, _Const):
            value = operand.value
            if value is None:
                return operand
            if _is_number(value) or isinstance(value, Interval):
                return _Const(-value)
            raise QueryError(f"cannot negate the {_kind_of(value)} {value!r}")
        sql, params = self._number(operand)
        return _Expr(f"(-{sql})", params, "number", "the negated value")
