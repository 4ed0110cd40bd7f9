"""Time windows and bt's discovery filter composition.

``parse_window`` is bt's ``--window`` parser (``src/utils/duration.rs``): a bare integer is
seconds, or an integer with one ASCII suffix ``s``/``m``/``h``/``d`` (any case); anything else
raises ``ValueError("invalid dataset pipeline pull window '<text>'")``.

``discovery_filter`` builds exactly the JSON filter bt sends (docs/BT_COMPAT.md §2); the
``absolute_discovery_filter`` variant replaces the relative ``NOW() - INTERVAL`` part with a
half-open ``[start, end)`` window on ``created`` for partitions. Timestamps are canonical UTC
text ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (the local plane stores ``created`` in that form, so text
comparison is time comparison).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_WINDOW",
    "TimeWindow",
    "WindowIndex",
    "absolute_discovery_filter",
    "combine_filter_parts",
    "discovery_filter",
    "format_timestamp",
    "parse_timestamp",
    "parse_window",
]

#: bt's default ``--window``.
DEFAULT_WINDOW = "1d"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DIGITS = re.compile(r"\+?[0-9]+")


def parse_duration_seconds(text: str) -> int:
    """bt's duration parser; raises ``ValueError("invalid duration '<text>'")``."""
    trimmed = text.strip()
    if not trimmed:
        raise ValueError("duration cannot be empty")
    if _DIGITS.fullmatch(trimmed):
        return int(trimmed)
    last = trimmed[-1]
    if last.isascii() and last.isalpha():
        number, unit = trimmed[:-1].strip(), last.lower()
    else:
        number, unit = trimmed, "s"
    if not _DIGITS.fullmatch(number):
        raise ValueError(f"invalid duration '{text}'")
    if unit not in _UNITS:
        raise ValueError(f"invalid duration '{text}'. expected suffix s/m/h/d")
    return int(number) * _UNITS[unit]


def parse_window(text: str) -> int:
    """Seconds in a ``--window`` value: ``90``=90, ``15m``=900, ``2h``=7200, ``1d``=86400."""
    try:
        return parse_duration_seconds(text)
    except ValueError:
        raise ValueError(f"invalid dataset pipeline pull window '{text}'") from None


def _utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """Canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (naive values are taken as UTC)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse ISO-8601 (``Z`` or offset, any fraction length) into an aware UTC datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    match = re.fullmatch(r"(.*T\d{2}:\d{2}:\d{2})\.(\d+)(.*)", value)
    if match:  # fromisoformat before 3.11 and some backends disagree on >6 fraction digits
        head, fraction, tail = match.groups()
        value = f"{head}.{fraction[:6].ljust(6, '0')}{tail}"
    return _utc(datetime.fromisoformat(value))


@dataclass(frozen=True)
class TimeWindow:
    """A half-open ``[start, end)`` window on span ``created``; either bound may be open.

    Bounds are stored as aware UTC datetimes (naive inputs are taken as UTC).
    """

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        start = _utc(self.start) if self.start is not None else None
        end = _utc(self.end) if self.end is not None else None
        if start is not None and end is not None and end <= start:
            raise ValueError(f"time window end {format_timestamp(end)} must be after its start {format_timestamp(start)}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @classmethod
    def relative(cls, seconds: int, now: datetime | None = None) -> TimeWindow:
        """bt's ``--window``: from ``now - seconds``, open-ended (bt sends ``created >= NOW() - ...``)."""
        if seconds < 0:
            raise ValueError("window seconds must be >= 0")
        now = _utc(now) if now is not None else datetime.now(UTC)
        return cls(start=now - timedelta(seconds=seconds), end=None)

    @classmethod
    def absolute(cls, start: datetime | None, end: datetime | None) -> TimeWindow:
        """A fixed window, e.g. one partition's ``[start, end)``."""
        return cls(start=start, end=end)

    def contains(self, when: datetime | str) -> bool:
        moment = parse_timestamp(when) if isinstance(when, str) else _utc(when)
        if self.start is not None and moment < self.start:
            return False
        if self.end is not None and moment >= self.end:
            return False
        return True

    def btql(self) -> str | None:
        """``created >= '<start>' AND created < '<end>'`` (present bounds only), or ``None``."""
        parts = []
        if self.start is not None:
            parts.append(f"created >= '{format_timestamp(self.start)}'")
        if self.end is not None:
            parts.append(f"created < '{format_timestamp(self.end)}'")
        return " AND ".join(parts) or None

    def filter_part(self) -> dict[str, Any] | None:
        """The window as one discovery filter part: ``{"btql": self.btql()}``."""
        text = self.btql()
        return {"btql": text} if text else None

    def to_json(self) -> dict[str, str | None]:
        return {
            "start": format_timestamp(self.start) if self.start is not None else None,
            "end": format_timestamp(self.end) if self.end is not None else None,
        }

    def __str__(self) -> str:
        data = self.to_json()
        return f"[{data['start'] or '-inf'}, {data['end'] or 'now'})"


def root_span_ids_filter(root_span_ids: Sequence[str]) -> dict[str, Any]:
    """bt's ``root_span_id IN (...)`` JSON node."""
    return {
        "op": "in",
        "left": {"op": "ident", "name": ["root_span_id"]},
        "right": {"op": "literal", "value": list(root_span_ids)},
    }


def combine_filter_parts(parts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """bt's composition: no part -> ``None``; one part bare; several under ``{"op":"and"}``."""
    parts = [part for part in parts if part]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"op": "and", "children": list(parts)}


def _source_part(source_filter: str | None) -> dict[str, Any] | None:
    if source_filter is None:
        return None
    text = source_filter.strip()
    return {"btql": text} if text else None


def discovery_filter(
    window_seconds: int | None,
    source_filter: str | None = None,
    root_span_ids: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """bt's discovery filter, parts in bt's order.

    1. ``{"btql": "created >= NOW() - INTERVAL <secs> SECOND"}`` -- only without root span ids
       (and only when ``window_seconds`` is not ``None``);
    2. ``{"btql": <source filter, stripped>}`` if non-blank;
    3. the ``root_span_id IN [...]`` node when root span ids are given.
    """
    window_part = None
    if not root_span_ids and window_seconds is not None:
        window_part = {"btql": f"created >= NOW() - INTERVAL {int(window_seconds)} SECOND"}
    return _compose(window_part, source_filter, root_span_ids)


def absolute_discovery_filter(
    window: TimeWindow | None,
    source_filter: str | None = None,
    root_span_ids: Sequence[str] | None = None,
) -> dict[str, Any] | None:
    """Like :func:`discovery_filter` with an absolute window part ``{"btql": window.btql()}``.

    Same order and the same rule as bt: root span ids replace the window.
    """
    window_part = window.filter_part() if not root_span_ids and window is not None else None
    return _compose(window_part, source_filter, root_span_ids)


def _compose(
    window_part: dict[str, Any] | None, source_filter: str | None, root_span_ids: Sequence[str] | None
) -> dict[str, Any] | None:
    """bt's part order: the window (callers drop it when root span ids are given), the source
    filter, the root span ids; empty parts are left out."""
    parts = [part for part in (window_part, _source_part(source_filter)) if part]
    if root_span_ids:
        parts.append(root_span_ids_filter(root_span_ids))
    return combine_filter_parts(parts)


class WindowIndex:
    """Finds the window holding a timestamp among many (a backfill's partitions): a binary search
    over the windows sorted by start, so a sweep over N refs and P partitions costs N log P."""

    def __init__(self, windows: Iterable[TimeWindow]) -> None:
        self._windows = list(windows)
        bounded = all(w.start is not None for w in self._windows)
        ordered = sorted(self._windows, key=lambda w: w.start) if bounded else []  # type: ignore[arg-type, return-value]
        disjoint = bounded and all(
            a.end is not None and a.end <= b.start  # type: ignore[operator]
            for a, b in zip(ordered, ordered[1:], strict=False)
        )
        # Overlapping or open-started windows keep the first-match order of a linear scan.
        self._sorted = ordered if disjoint else None
        self._starts = [w.start for w in ordered] if disjoint else []

    def find(self, created: Any) -> TimeWindow | None:
        """The window holding the timestamp text ``created`` (a span's ``created``); None when
        none does or ``created`` is not a readable timestamp."""
        if not isinstance(created, str):
            return None
        try:
            moment = parse_timestamp(created)
        except ValueError:
            return None
        if self._sorted is None:
            return next((w for w in self._windows if w.contains(moment)), None)
        at = bisect_right(self._starts, moment) - 1
        if at >= 0 and self._sorted[at].contains(moment):
            return self._sorted[at]
        return None
