"""Reading SQL and BTQL text with sqlglot, and turning sqlglot trees into filter nodes.

Text is tokenized by a small sqlglot dialect (strings in ``'single'`` quotes with ``''`` or
``\\'`` escapes; identifiers in ``"double"`` quotes or backticks), the token stream is checked
and lightly rewritten for BTQL, then parsed by sqlglot's own parser:

- comments (``--``, ``/* */``), ``;``, ``?`` placeholders, ``@``/``:`` parameters and operators
  the local plane does not implement (``||``, ``::``, ``->``, ...) are refused up front;
- ``INCLUDES`` / ``CONTAINS`` and ``MATCH`` become infix operators at the precedence of ``LIKE``
  (so ``NOT INCLUDES`` works like ``NOT LIKE``);
- a double-quoted token is a *path segment* when it touches a path (``scores."Response Quality"``,
  ``"metadata".x``, ``"tags"[0]``) and a *string literal* when it stands alone
  (``metadata.model = "gpt-4"``); backticks always quote an identifier;
- every word of a path (after a ``.``, or before ``.``/``[``) is read as a quoted name, so
  keywords work as field names (``metrics.end``, ``metadata.order``, ``metadata.list[0]``), and a
  keyword standing before a comparison operator is a field name too (``comment IS NOT NULL``),
  unless it is part of the expression grammar (AND, IN, NULL, ...).

Only the node types handled in :func:`to_node` are accepted; anything else sqlglot can parse
(subqueries, CASE, casts, other functions) is a :class:`QueryError`.
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser, binary_range_parser
from sqlglot.tokens import Token, Tokenizer, TokenType

from .errors import QueryError
from .nodes import (
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
    Path,
    PathPart,
    time_function,
)
from .times import parse_interval_text


# sqlglot >= 26 builds concrete nodes as Expression + trait classes; older releases subclass Binary.
_BINARY_BASES: tuple[type, ...] = (
    (exp.Binary,) if issubclass(exp.Binary, exp.Expression) else (exp.Expression, exp.Binary)
)


class Includes(*_BINARY_BASES):  # type: ignore[misc]
    """BTQL ``left INCLUDES right`` (alias ``CONTAINS``)."""


class Match(*_BINARY_BASES):  # type: ignore[misc]
    """BTQL/SQL ``left MATCH 'words'``."""


# Token types borrowed for the BTQL operators. User text can never produce them: the
# characters that normally would (``@>``, ``SIMILAR TO``) are refused before the rewrite.
_INCLUDES_TOKEN = TokenType.AT_GT
_MATCH_TOKEN = TokenType.SIMILAR_TO


class _Tokenizer(Tokenizer):
    IDENTIFIERS = ['"', "`"]
    IDENTIFIER_ESCAPES = ["\\"]
    STRING_ESCAPES = ["'", "\\"]


class _Parser(Parser):
    RANGE_PARSERS = {
        **Parser.RANGE_PARSERS,
        _INCLUDES_TOKEN: binary_range_parser(Includes),
        _MATCH_TOKEN: binary_range_parser(Match),
    }
    # sqlglot reads `<name>[...]` as a constructor when the name is ARRAY or LIST, even at the end
    # of a path (`metadata.list[0]`); BTQL has no such constructors, only `[...]` literals.
    ARRAY_CONSTRUCTORS: dict = {}


_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ]*$")

# Punctuation and literal tokens the languages use.
_SYMBOLS = {
    TokenType.L_PAREN,
    TokenType.R_PAREN,
    TokenType.L_BRACKET,
    TokenType.R_BRACKET,
    TokenType.COMMA,
    TokenType.DOT,
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.LT,
    TokenType.LTE,
    TokenType.GT,
    TokenType.GTE,
    TokenType.PLUS,
    TokenType.DASH,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.MOD,
    TokenType.FARROW,  # shape => 'traces'
    TokenType.STRING,
    TokenType.NUMBER,
    TokenType.IDENTIFIER,
    TokenType.VAR,
}

# Keywords that are part of the expression grammar: never reinterpreted as field names,
# except directly after a dot.
_GRAMMAR = {
    TokenType.AND,
    TokenType.OR,
    TokenType.NOT,
    TokenType.IS,
    TokenType.IN,
    TokenType.LIKE,
    TokenType.ILIKE,
    TokenType.BETWEEN,
    TokenType.NULL,
    TokenType.TRUE,
    TokenType.FALSE,
    TokenType.INTERVAL,
    TokenType.CURRENT_TIMESTAMP,
    TokenType.CURRENT_DATE,
    TokenType.CASE,
    TokenType.WHEN,
    TokenType.THEN,
    TokenType.ELSE,
    TokenType.SELECT,
    TokenType.FROM,
    TokenType.WHERE,
    TokenType.ORDER_BY,
    TokenType.GROUP_BY,
    TokenType.ASC,
    TokenType.DESC,
    TokenType.ALIAS,
    TokenType.DISTINCT,
}

# Tokens after which a preceding keyword must be a field name (``comment IS NOT NULL``).
_OPERATORS = {
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.LT,
    TokenType.LTE,
    TokenType.GT,
    TokenType.GTE,
    TokenType.IS,
    TokenType.IN,
    TokenType.LIKE,
    TokenType.ILIKE,
    TokenType.NOT,
    TokenType.BETWEEN,
}

_SPECIAL_MESSAGES = {
    TokenType.SEMICOLON: "';' is not allowed: send exactly one query or filter, without a trailing statement",
    TokenType.PLACEHOLDER: "'?' is not supported (neither placeholders nor the ternary c ? a : b)",
    TokenType.PARAMETER: "query parameters ('@name') are not supported; write the value as a literal",
    TokenType.COLON: "':' is not supported in an expression",
    TokenType.DCOLON: "'::' casts are not supported",
    TokenType.DPIPE: "'||' is not supported; combine conditions with OR",
    TokenType.PIPE: "'|' is not supported inside an expression (it separates BTQL clauses)",
    TokenType.DAMP: "'&&' is not supported; combine conditions with AND",
}

_BTQL_OPERATORS = {"INCLUDES": _INCLUDES_TOKEN, "CONTAINS": _INCLUDES_TOKEN, "MATCH": _MATCH_TOKEN}


def _is_word(token: Token) -> bool:
    return token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER, TokenType.NUMBER) and bool(
        _WORD.match(token.text)
    )


def tokenize(text: str, what: str, *, allow_trailing_semicolon: bool = False) -> list[Token]:
    """Tokenize ``text`` (a filter, a clause, a statement), refuse what cannot be safe, rewrite BTQL.

    ``what`` names the text in error messages ("filter", "query", ...).
    """
    if not isinstance(text, str):
        raise QueryError(f"the {what} must be text, got {type(text).__name__}")
    if "\x00" in text:
        raise QueryError(f"the {what} contains a NUL character")
    try:
        tokens = _Tokenizer().tokenize(text)
    except TokenError:
        raise QueryError(
            f"cannot read the {what} {_clip(text)!r}: check for an unterminated quote "
            "(strings use 'single quotes'; write '' or \\' for a quote inside)"
        ) from None
    if allow_trailing_semicolon and tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        if tokens[-1].comments:
            raise QueryError(f"comments (-- or /* */) are not allowed in a {what}; remove them")
        tokens = tokens[:-1]
    for token in tokens:
        if token.comments:
            raise QueryError(f"comments (-- or /* */) are not allowed in a {what}; remove them")
        kind = token.token_type
        if kind in _SPECIAL_MESSAGES:
            raise QueryError(f"invalid {what}: {_SPECIAL_MESSAGES[kind]}")
        if kind in (_INCLUDES_TOKEN, _MATCH_TOKEN) or not (kind in _SYMBOLS or _is_word(token)):
            raise QueryError(
                f"invalid {what}: unsupported operator or character {token.text!r} "
                f"at line {token.line}, column {token.col}"
            )

    out: list[Token] = []
    for i, token in enumerate(tokens):
        prev = tokens[i - 1].token_type if i else None
        nxt = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        kind = token.token_type
        touches_path = prev == TokenType.DOT or nxt in (TokenType.DOT, TokenType.L_BRACKET)
        new_kind = kind
        if kind == TokenType.IDENTIFIER and text[token.start : token.start + 1] == '"':
            # standalone "double quotes" are a string; touching a path they are a segment
            if not touches_path and prev != TokenType.L_BRACKET:
                new_kind = TokenType.STRING
        elif (
            kind == TokenType.VAR
            and token.text.upper() in _BTQL_OPERATORS
            and prev is not None
            and prev != TokenType.DOT
            and nxt != TokenType.DOT
            and nxt not in _OPERATORS
        ):
            # an infix operator: between two operands, never a path segment
            new_kind = _BTQL_OPERATORS[token.text.upper()]
        elif kind == TokenType.CASE and prev != TokenType.DOT:
            raise QueryError(f"CASE expressions are not supported by the local data plane (in the {what})")
        elif (kind == TokenType.VAR or kind not in _SYMBOLS) and _is_word(token) and " " not in token.text:
            # A path segment becomes a quoted identifier, so that sqlglot never reads it as a
            # keyword or as a constructor (it parses `list[1]` and `array[0]` as LIST/ARRAY
            # literals, dropping the path before them).
            if prev == TokenType.DOT:
                new_kind = TokenType.IDENTIFIER
            elif (kind == TokenType.VAR or kind not in _GRAMMAR) and touches_path:
                new_kind = TokenType.IDENTIFIER
            elif kind != TokenType.VAR and kind not in _GRAMMAR and nxt in _OPERATORS:
                new_kind = TokenType.IDENTIFIER
        if new_kind is not kind:
            token = Token(
                new_kind,
                token.text,
                line=token.line,
                col=token.col,
                start=token.start,
                end=token.end,
                comments=[],
            )
        out.append(token)
    return out


def _clip(text: str, size: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 3] + "..."


def _parse_error(error: ParseError, text: str, what: str) -> QueryError:
    detail = error.errors[0] if error.errors else {}
    description = detail.get("description") or "invalid syntax"
    near = (detail.get("highlight") or "").strip()
    where = f" near {near!r}" if near else ""
    col = detail.get("col")
    at = f" (line {detail.get('line')}, column {col})" if col else ""
    return QueryError(f"cannot parse the {what} {_clip(text)!r}: {description}{where}{at}")


# sqlglot raises these (rather than ParseError) on some malformed input; RecursionError on very
# deep nesting.
_PARSER_FAILURES = (TokenError, ValueError, TypeError, IndexError, KeyError, AttributeError, RecursionError)


def parse_tokens(tokens: list[Token], text: str, what: str) -> list[exp.Expr]:
    """Parse tokens as SQL statements with sqlglot; every failure becomes a :class:`QueryError`."""
    try:
        parsed = _Parser().parse(tokens, text)
    except ParseError as error:
        raise _parse_error(error, text, what) from None
    except _PARSER_FAILURES:
        raise QueryError(f"cannot parse the {what} {_clip(text)!r}") from None
    return [p for p in parsed if p is not None]


def parse_expression(text: str, what: str = "filter") -> Node:
    """Read one SQL/BTQL expression (a filter) into a filter node."""
    tokens = tokenize(text, what)
    if not tokens:
        raise QueryError(f"the {what} is empty; write an expression such as metadata.flagged = true")
    return to_node(single_expression(tokens, text, what), what)


_STATEMENT_WORDS = {
    "SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "MERGE", "REPLACE",
    "TRUNCATE", "PRAGMA", "ATTACH", "DETACH", "VACUUM", "UPSERT", "EXPLAIN",
}


def single_expression(tokens: list[Token], text: str, what: str) -> exp.Expr:
    """Parse tokens that must hold exactly one expression (never a statement).

    sqlglot parses them straight into a condition, so statements, trailing tokens and
    sqlglot's "parse as Command" fallback never come into play.
    """
    first = tokens[0]
    if first.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) and first.text.upper() in _STATEMENT_WORDS:
        raise QueryError(
            f"the {what} must be an expression such as metadata.flagged = true; "
            "statements and subqueries are not supported"
        )
    try:
        parsed = _Parser().parse_into(exp.Condition, tokens, text)
    except ParseError as error:
        raise _parse_error(error, text, what) from None
    except _PARSER_FAILURES:
        raise QueryError(f"cannot parse the {what} {_clip(text)!r}") from None
    if len(parsed) != 1 or parsed[0] is None:
        raise QueryError(f"the {what} must be a single expression")
    return parsed[0]


_COMPARE = {
    exp.EQ: "eq",
    exp.NEQ: "ne",
    exp.LT: "lt",
    exp.LTE: "le",
    exp.GT: "gt",
    exp.GTE: "ge",
    exp.Add: "add",
    exp.Sub: "sub",
    exp.Mul: "mul",
    exp.Div: "div",
    exp.Mod: "mod",
    Includes: "includes",
    Match: "match",
}

_UNSUPPORTED = {
    exp.Case: "CASE expressions are not supported",
    exp.If: "IF/CASE expressions are not supported",
    exp.Cast: "casts are not supported",
    exp.Exists: "EXISTS subqueries are not supported",
    exp.Subquery: "subqueries are not supported",
    exp.Query: "subqueries are not supported",
    exp.Star: "'*' is only allowed as the whole select list",
    exp.Window: "window functions are not supported",
    exp.Concat: "string concatenation (including adjacent 'a' 'b' strings) is not supported",
}


def to_node(e: exp.Expr, what: str = "filter") -> Node:
    """Turn a sqlglot expression into a filter node, refusing everything not listed here."""
    if isinstance(e, exp.Paren):
        return to_node(e.this, what)
    if isinstance(e, (exp.And, exp.Or)):
        # flatten a chain of the same connective without recursion (sqlglot builds it left-deep)
        kind = type(e)
        children: list[Node] = []
        stack = [e]
        while stack:
            item = stack.pop()
            if type(item) is kind:
                stack.extend((item.expression, item.this))
            else:
                children.append(to_node(item, what))
        return Logic("and" if kind is exp.And else "or", tuple(children))
    if isinstance(e, exp.Not):
        inner = e.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null):
            return IsNull(to_node(inner.this, what), negate=True)
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Boolean):
            return IsBool(to_node(inner.this, what), bool(inner.expression.this), negate=True)
        return Not(to_node(e.this, what))
    if isinstance(e, exp.Is):
        if isinstance(e.expression, exp.Null):
            return IsNull(to_node(e.this, what))
        if isinstance(e.expression, exp.Boolean):
            return IsBool(to_node(e.this, what), bool(e.expression.this))
        raise QueryError("IS must be followed by NULL, NOT NULL, TRUE or FALSE")
    op = _COMPARE.get(type(e))
    if op is not None:
        return BinOp(op, to_node(e.this, what), to_node(e.expression, what))
    if isinstance(e, (exp.Like, exp.ILike)):
        if e.args.get("escape"):
            raise QueryError("the ESCAPE clause is not supported; escape % and _ with a backslash")
        node: Node = BinOp(
            "like" if isinstance(e, exp.Like) else "ilike", to_node(e.this, what), to_node(e.expression, what)
        )
        return Not(node) if e.args.get("negate") else node
    if isinstance(e, exp.In):
        if e.args.get("query") is not None or e.args.get("unnest") is not None:
            raise QueryError("subqueries are not supported by the local data plane; list the values: x IN ('a', 'b')")
        left = to_node(e.this, what)
        if e.args.get("field") is not None:
            return BinOp("in", left, to_node(e.args["field"], what))
        items = tuple(to_node(item, what) for item in e.expressions)
        return BinOp("in", left, _list_node(items))
    if isinstance(e, exp.Between):
        return Between(to_node(e.this, what), to_node(e.args["low"], what), to_node(e.args["high"], what))
    if isinstance(e, exp.Neg):
        return Neg(to_node(e.this, what))
    if isinstance(e, exp.Literal):
        return Lit(e.this if e.is_string else _number(e.this))
    if isinstance(e, exp.Boolean):
        return Lit(bool(e.this))
    if isinstance(e, exp.Null):
        return Lit(None)
    if isinstance(e, exp.Array):
        return _list_node(tuple(to_node(item, what) for item in e.expressions))
    if isinstance(e, exp.Interval):
        return _interval(e)
    if isinstance(e, exp.Anonymous):
        return time_function(e.name, len(e.expressions))
    if isinstance(e, exp.CurrentTimestamp):
        return time_function("current_timestamp", 1 if e.this else 0)
    if isinstance(e, exp.CurrentDate):
        return time_function("current_date", 1 if e.this else 0)
    parts = path_parts(e)
    if parts is not None:
        return Path(parts)
    for kind, message in _UNSUPPORTED.items():
        if isinstance(e, kind):
            raise QueryError(f"{message} by the local data plane (in the {what})")
    if isinstance(e, exp.Func):
        raise QueryError(
            f"unknown function {e.sql_name().lower()}(); the local data plane supports now(), "
            "current_timestamp and current_date in filters"
        )
    raise QueryError(f"unsupported syntax in the {what}: {_clip(_sql(e), 60)!r}")


def _sql(e: exp.Expr) -> str:
    try:
        return e.sql()
    except Exception:  # pragma: no cover - only for the message
        return e.key


def _list_node(items: tuple[Node, ...]) -> Node:
    if all(isinstance(item, Lit) for item in items):
        return Lit([item.value for item in items])  # type: ignore[union-attr]
    return ListExpr(items)


def _number(text: str) -> int | float:
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise QueryError(f"cannot read the number {text!r}") from None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        value = float(value)
    return value


def _interval(e: exp.Interval) -> IntervalLit:
    body = e.this
    unit = e.args.get("unit")
    unit_name = unit.name if unit is not None else None
    sign = 1
    while isinstance(body, (exp.Neg, exp.Paren)):
        if isinstance(body, exp.Neg):
            sign = -sign
        body = body.this
    if not isinstance(body, exp.Literal):
        raise QueryError("an interval needs a literal amount: interval 7 day or interval '7 days'")
    interval = parse_interval_text(str(body.this), unit_name or None)
    return IntervalLit(interval if sign > 0 else -interval)


def path_parts(e: exp.Expr) -> tuple[PathPart, ...] | None:
    """The field path of a Column / Dot / Bracket expression, or None if ``e`` is not a path."""
    if isinstance(e, exp.Column):
        if isinstance(e.this, exp.Star):
            raise QueryError("'*' is not supported inside a path; name the field, e.g. metadata.user_id")
        return tuple(part.name for part in e.parts)
    if isinstance(e, exp.Identifier):
        return (e.name,)
    if isinstance(e, exp.Dot):
        base = path_parts(e.this)
        if base is None or not isinstance(e.expression, exp.Identifier):
            return None
        return base + (e.expression.name,)
    if isinstance(e, exp.Bracket):
        base = path_parts(e.this)
        if base is None:
            return None
        if len(e.expressions) != 1:
            raise QueryError("a bracket holds one key or index: scores['Answer quality'] or tags[0]")
        return base + (_bracket_key(e.expressions[0]),)
    return None


def _bracket_key(key: exp.Expr) -> PathPart:
    sign = 1
    while isinstance(key, (exp.Neg, exp.Paren)):
        if isinstance(key, exp.Neg):
            sign = -sign
        key = key.this
    if isinstance(key, exp.Literal):
        if key.is_string and sign > 0:
            return key.this
        number = _number(key.this) if not key.is_string else None
        if isinstance(number, int):
            return sign * number
    if isinstance(key, exp.Column) and len(key.parts) == 1 and sign > 0:
        return key.name  # `key` in backticks
    raise QueryError("a bracket must hold a quoted key or a whole-number index: scores['Answer quality'], tags[0], tags[-1]")
