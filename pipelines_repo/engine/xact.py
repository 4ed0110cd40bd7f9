"""Braintrust's ``_xact_id`` layout, read from the client side: ``(0x0DE1 << 48) | (unix_seconds << 16) | counter``.

    xact_before(moment) -> int          # the largest id stamped strictly before ``moment``
    xact_second(xact_id) -> datetime    # the UTC second an id was stamped at (None for another layout)

Export windows (transaction time) and dataset versions named by an ISO time both need these. The
local plane stamps ids with the same layout (``local/xact.py``, its own room).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["xact_before", "xact_second"]

_PREFIX = 0x0DE1 << 48


def xact_before(moment: datetime) -> int:
    """The largest ``_xact_id`` stamped strictly before ``moment`` (ids carry whole seconds)."""
    seconds = int(moment.timestamp())
    if moment.timestamp() > seconds:  # a fractional instant: ids of its own second are before it
        seconds += 1
    return (_PREFIX | (seconds << 16)) - 1


def xact_second(xact_id: int | str) -> datetime | None:
    """The UTC second a Braintrust ``_xact_id`` was stamped at (None for another layout)."""
    value = int(xact_id)
    if value >> 48 != 0x0DE1:
        return None
    return datetime.fromtimestamp((value >> 16) & 0xFFFFFFFF, UTC)
