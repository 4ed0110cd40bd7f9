"""The one error type of the query room.

Every problem with a user's query (bad syntax, an unknown function, an unsupported clause, a
value of the wrong type) raises :class:`QueryError`. Its message names the problem and, where
there is one, the fix; the HTTP app answers ``400 {"message": str(error)}``.
"""

from __future__ import annotations


class QueryError(ValueError):
    """A query or filter the local data plane cannot run, with a message meant for the user."""
