"""Export windows in transaction time: which ``_xact_id`` values belong to a window.

Braintrust stamps every write with an ``_xact_id`` that carries its second in bits 16-47
(``(0x0DE1 << 48) | (unix_seconds << 16) | counter``). A window ``[start, end)`` holds the rows
whose *latest write* happened in it: ``xact_at(start) < _xact_id <= xact_at(end)``, where
``xact_at(t)`` is the largest id stamped before ``t``. Windows tile time, so every write falls in
exactly one window; a row written (or updated) after its window was exported gets a new, later
``_xact_id`` and is exported again in the window of that write. Nothing is skipped as long as a
window is exported after every write stamped in it has committed (the schedule's lag).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..engine.xact import xact_before

__all__ = ["XactRange", "xact_range"]

@dataclass(frozen=True)
class XactRange:
    """``after < _xact_id <= through``: one window's transactions."""

    after: int
    through: int

    def filter_sql(self) -> str:
        """The BTQL/SQL filter selecting the range (``_xact_id`` compares as an integer)."""
        return f"_xact_id > {self.after} AND _xact_id <= {self.through}"


def xact_range(start: datetime, end: datetime) -> XactRange:
    """The transactions of the window ``[start, end)``."""
    if end <= start:
        raise ValueError(f"window end {end.isoformat()} is not after its start {start.isoformat()}")
    return XactRange(after=xact_before(start), through=xact_before(end))
