"""Transaction ids in Braintrust's 19-digit layout.

Braintrust stamps every write with an `_xact_id`: `(0x0DE1 << 48) | (unix_seconds << 16) | counter`.
Ids are compared as decimal strings by the SDK (`Dataset.version` is the string max), so every id
has the same width; this layout keeps them at 19 digits until the year 2106.
"""

from __future__ import annotations

_PREFIX = 0x0DE1 << 48
_MASK64 = (1 << 64) - 1
# Multiplicative inverses modulo 2**64 used by the SDK's "pretty" hex form (braintrust/xact_ids.py).
_PRETTY_MUL = 205891132094649
_PRETTY_INV = 1522336535492693385


def next_xact_id(previous: int | None, now_seconds: float) -> int:
    """The next transaction id: time-based, and strictly greater than `previous`."""
    candidate = _PREFIX | (int(now_seconds) << 16)
    if previous is not None and candidate <= previous:
        return previous + 1
    return candidate


def xact_seconds(xact_id: int) -> int:
    """The unix time (seconds) encoded in a transaction id."""
    return (xact_id & ((1 << 48) - 1)) >> 16


def prettify_xact(xact_id: int | str) -> str:
    """The 16-hex-digit form Braintrust's UI shows for a version."""
    return format((int(xact_id) * _PRETTY_MUL) & _MASK64, "016x")


def load_pretty_xact(pretty: str) -> int:
    """Inverse of `prettify_xact`; decimal strings pass through."""
    if len(pretty) != 16:
        return int(pretty)
    return ((int(pretty, 16) * _PRETTY_INV) & _MASK64) | _PREFIX
