"""Transaction ids in Braintrust's 19-digit layout.

Braintrust stamps every write with an `_xact_id`: `(0x0DE1 << 48) | (unix_seconds << 16) | counter`.
Ids are compared as decimal strings by the SDK (`Dataset.version` is the string max), so every id
has the same width; this layout keeps them at 19 digits until the year 2106.
"""

from __future__ import annotations

_PREFIX = 0x0DE1 << 48


def next_xact_id(previous: int | None, now_seconds: float) -> int:
    """The next transaction id: time-based, and strictly greater than `previous`."""
    candidate = _PREFIX | (int(now_seconds) << 16)
    if previous is not None and candidate <= previous:
        return previous + 1
    return candidate
