"""The query language of the local data plane: BTQL/SQL filters and ``/btql`` queries.

- :func:`compile_filter_text` / :func:`compile_filter_tree` turn a filter (SQL or BTQL text, or
  the JSON expression tree the SDK and ``bt`` send) into a :class:`CompiledFilter`: a SQLite
  boolean expression over the ``rows`` table aliased ``r`` plus ``?`` parameters
  (docs/ARCHITECTURE.md, "Filter compilation contract").
- :func:`parse_query` reads the ``query`` field of ``POST /btql`` (SQL, BTQL pipe text or JSON AST)
  into a :class:`ParsedQuery`.
- Every user error is a :class:`QueryError` whose message names the problem and the fix.

Text is parsed with sqlglot (``syntax.py``) and both front ends share one tree (``nodes.py``) and
one compiler (``filters.py``); user text never reaches SQLite.
"""

from .errors import QueryError
from .filters import CompiledFilter, and_filters, compile_filter_text, compile_filter_tree
from .parse import SHAPES, SORT_FIELDS, SOURCES, ParsedQuery, SelectItem, SortItem, parse_query

__all__ = [
    "QueryError",
    "CompiledFilter",
    "compile_filter_text",
    "compile_filter_tree",
    "and_filters",
    "SelectItem",
    "SortItem",
    "ParsedQuery",
    "parse_query",
    "SHAPES",
    "SORT_FIELDS",
    "SOURCES",
]
