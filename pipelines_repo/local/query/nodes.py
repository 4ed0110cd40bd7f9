"""The filter expression tree that both front ends produce and the compiler consumes.

Text (SQL or BTQL, read by sqlglot in ``syntax.py``) and the JSON AST that the SDK and ``bt``
send (read here by :func:`from_json`) become the same small tree of frozen dataclasses, so there
is exactly one compiler (``filters.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from .errors import QueryError
from .times import Interval, parse_interval_text, unit_interval

PathPart = Union[str, int]  # a key, or a 0-based array index (negative counts from the end)


@dataclass(frozen=True)
class Path:
    """A field reference such as ``metadata.user.id`` or ``scores['Answer quality']``."""

    parts: tuple[PathPart, ...]


@dataclass(frozen=True)
class Lit:
    """A literal: None, bool, int, float, str, or a list / dict of literals."""

    value: Any


@dataclass(frozen=True)
class IntervalLit:
    """``interval 7 day``."""

    interval: Interval


@dataclass(frozen=True)
class Now:
    """``now()`` / ``current_timestamp``: the ``now`` given to the compiler."""


@dataclass(frozen=True)
class Today:
    """``current_date``: midnight UTC of ``now``."""


@dataclass(frozen=True)
class ListExpr:
    """``(a, b, c)`` / ``['a', 'b']`` on the right of IN, when some items are not literals."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class BinOp:
    """``left <op> right``; op is one of :data:`BINARY_OPS`."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logic:
    """``and`` / ``or`` over any number of children."""

    op: str
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    expr: Node


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    expr: Node


@dataclass(frozen=True)
class IsNull:
    """``expr IS NULL`` (or ``IS NOT NULL`` when ``negate``)."""

    expr: Node
    negate: bool = False


@dataclass(frozen=True)
class IsBool:
    """``expr IS TRUE`` / ``IS FALSE`` (never NULL), negated for ``IS NOT ...``."""

    expr: Node
    value: bool
    negate: bool = False


@dataclass(frozen=True)
class Between:
    expr: Node
    low: Node
    high: Node


Node = Union[Path, Lit, IntervalLit, Now, Today, ListExpr, BinOp, Logic, Not, Neg, IsNull, IsBool, Between]

COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
ARITHMETIC = ("add", "sub", "mul", "div", "mod")
BINARY_OPS = COMPARISONS + ARITHMETIC + ("in", "like", "ilike", "match", "includes")

# JSON AST op -> (internal op, negated)
_JSON_BINARY: dict[str, tuple[str, bool]] = {op: (op, False) for op in BINARY_OPS}
_JSON_BINARY.update(
    {
        "contains": ("includes", False),
        "notin": ("in", True),
        "not_in": ("in", True),
        "notlike": ("like", True),
        "notilike": ("ilike", True),
        "notmatch": ("match", True),
        "notincludes": ("includes", True),
        "notcontains": ("includes", True),
    }
)

TIME_FUNCTIONS = ("now", "current_timestamp", "current_date")


def time_function(name: str, nargs: int) -> Node:
    """The node for a zero-argument time function, or a QueryError for anything else."""
    lowered = name.lower()
    if lowered in ("now", "current_timestamp"):
        node: Node = Now()
    elif lowered == "current_date":
        node = Today()
    else:
        raise QueryError(
            f"unknown function {name}(); the local data plane supports now(), "
            "current_timestamp and current_date in filters"
        )
    if nargs:
        raise QueryError(f"{lowered}() takes no arguments")
    return node


def _child(node: dict, key: str, op: str) -> Any:
    if key not in node:
        raise QueryError(f"filter node {{'op': {op!r}}} is missing its {key!r} field")
    return node[key]


def from_json(node: Any, parse_text: Callable[[str], Node]) -> Node:
    """Read a JSON AST expression (``{"op": ...}`` nodes, ``{"btql": "<text>"}`` leaves).

    ``parse_text`` reads the text of ``btql`` leaves (it is ``syntax.parse_expression``).
    """
    if not isinstance(node, dict):
        raise QueryError(
            f"a filter node must be a JSON object such as {{'op': 'eq', ...}}, got {type(node).__name__}"
        )
    if "btql" in node and "op" not in node:
        text = node["btql"]
        if not isinstance(text, str):
            raise QueryError("a {'btql': ...} filter node must hold expression text")
        return parse_text(text)
    op = node.get("op")
    if not isinstance(op, str):
        raise QueryError(f"filter node {node!r} has no 'op'; expected e.g. {{'op': 'eq', 'left': ..., 'right': ...}}")
    op_l = op.lower()

    def sub(value: Any) -> Node:
        return from_json(value, parse_text)

    if op_l == "ident":
        name = _child(node, "name", op)
        if isinstance(name, str):
            name = [name]
        if not isinstance(name, list) or not name:
            raise QueryError("an ident node needs 'name': a non-empty list of keys")
        parts: list[PathPart] = []
        for part in name:
            if isinstance(part, bool) or not isinstance(part, (str, int)):
                raise QueryError(f"ident name parts must be strings or integers, got {part!r}")
            parts.append(part)
        return Path(tuple(parts))
    if op_l == "literal":
        return Lit(node.get("value"))
    if op_l in _JSON_BINARY:
        inner, negated = _JSON_BINARY[op_l]
        result: Node = BinOp(inner, sub(_child(node, "left", op)), sub(_child(node, "right", op)))
        return Not(result) if negated else result
    if op_l in ("and", "or"):
        if "children" in node:
            children = node["children"]
            if not isinstance(children, list):
                raise QueryError(f"'{op_l}' children must be a list")
            return Logic(op_l, tuple(sub(c) for c in children))
        return Logic(op_l, (sub(_child(node, "left", op)), sub(_child(node, "right", op))))
    if op_l == "not":
        return Not(sub(node["expr"] if "expr" in node else _child(node, "left", op)))
    if op_l in ("isnull", "isnotnull"):
        return IsNull(sub(_child(node, "expr", op)), negate=op_l == "isnotnull")
    if op_l in ("neg", "negate", "unary_minus"):
        return Neg(sub(_child(node, "expr", op)))
    if op_l == "interval":
        value = _child(node, "value", op)
        unit = node.get("unit")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise QueryError("an interval node needs a numeric 'value' and a 'unit'")
        if unit is None:
            return IntervalLit(parse_interval_text(str(value)))
        if isinstance(value, str):
            return IntervalLit(parse_interval_text(value, str(unit)))
        return IntervalLit(unit_interval(float(value), str(unit)))
    if op_l == "function":
        name_node = _child(node, "name", op)
        name = name_node
        if isinstance(name_node, dict):
            ident = name_node.get("name")
            name = ident[-1] if isinstance(ident, list) and ident else ident
        if not isinstance(name, str):
            raise QueryError("a function node needs 'name': {'op': 'ident', 'name': [<function name>]}")
        args = node.get("args") or []
        return time_function(name, len(args))
    raise QueryError(
        f"unknown filter op {op!r}; supported ops: ident, literal, and, or, not, isnull, isnotnull, "
        "interval, function, " + ", ".join(sorted(_JSON_BINARY))
    )
