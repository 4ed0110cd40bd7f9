"""Time values in filters and stored rows: canonical timestamps, ISO parsing and intervals.

Row ``created`` values are stored as canonical UTC text ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (see
docs/ARCHITECTURE.md), so every time value a filter compares with ``created`` is turned into that
same text, and text comparison is time comparison.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .errors import QueryError

# unit name (singular, lower case) -> (months, seconds) per unit
_UNITS: dict[str, tuple[int, float]] = {
    "microsecond": (0, 1e-6),
    "millisecond": (0, 1e-3),
    "second": (0, 1.0),
    "minute": (0, 60.0),
    "hour": (0, 3600.0),
    "day": (0, 86400.0),
    "week": (0, 7 * 86400.0),
    "month": (1, 0.0),
    "quarter": (3, 0.0),
    "year": (12, 0.0),
}
_ALIASES = {
    "us": "microsecond",
    "ms": "millisecond",
    "s": "second",
    "sec": "second",
    "secs": "second",
    "min": "minute",
    "mins": "minute",
    "h": "hour",
    "hr": "hour",
    "hrs": "hour",
    "d": "day",
    "w": "week",
    "mon": "month",
    "mons": "month",
    "y": "year",
    "yr": "year",
    "yrs": "year",
}
UNIT_NAMES = "second, minute, hour, day, week, month or year (singular or plural)"


@dataclass(frozen=True)
class Interval:
    """A span of time: whole calendar months plus seconds (either may be negative)."""

    months: int = 0
    seconds: float = 0.0

    def __neg__(self) -> Interval:
        return Interval(-self.months, -self.seconds)

    def __add__(self, other: Interval) -> Interval:
        return Interval(self.months + other.months, self.seconds + other.seconds)

    def scaled(self, factor: float) -> Interval:
        months = self.months * factor
        if months != int(months):
            raise QueryError("an interval of months or years can only be multiplied by a whole number")
        return Interval(int(months), self.seconds * factor)


def unit_interval(amount: float, unit: str) -> Interval:
    """``amount`` of ``unit`` (``day``, ``days``, ``HOUR``, ...) as an :class:`Interval`."""
    name = unit.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in _UNITS and name.endswith("s"):
        name = _ALIASES.get(name[:-1], name[:-1])
    if name not in _UNITS:
        raise QueryError(f"unknown interval unit {unit!r}; use {UNIT_NAMES}, e.g. interval 7 day")
    months, seconds = _UNITS[name]
    if months:
        if amount != int(amount):
            raise QueryError(f"interval {amount} {unit}: months and years must be whole numbers")
        return Interval(months=int(amount) * months)
    return Interval(seconds=amount * seconds)


_PAIR = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*,?")


def parse_interval_text(text: str, unit: str | None = None) -> Interval:
    """Read an interval body: ``'7'`` with a unit, or ``'7 days'``, ``'1 day 2 hours'``."""
    body = text.strip()
    if unit:
        try:
            amount = float(body)
        except ValueError:
            raise QueryError(f"interval {text!r} {unit}: the amount must be a number") from None
        return unit_interval(amount, unit)
    total = Interval()
    pos = 0
    while pos < len(body):
        m = _PAIR.match(body, pos)
        if not m:
            raise QueryError(
                f"cannot read interval {text!r}; write e.g. interval 7 day or interval '7 days'"
            )
        total = total + unit_interval(float(m.group(1)), m.group(2))
        pos = m.end()
    if not body:
        raise QueryError("empty interval; write e.g. interval 7 day")
    return total


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + (value.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise QueryError("the interval moves the time outside years 1-9999")
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def shift(value: datetime, interval: Interval) -> datetime:
    """``value + interval``; months move the calendar month, clamping the day (Mar 31 - 1 month = Feb 28)."""
    try:
        if interval.months:
            value = _add_months(value, interval.months)
        return value + timedelta(seconds=interval.seconds)
    except OverflowError:
        raise QueryError("the interval moves the time outside years 1-9999") from None


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def canonical(value: datetime) -> str:
    """The canonical stored form: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def start_of_day(value: datetime) -> datetime:
    """Midnight UTC of ``value``'s UTC date (what ``current_date`` means here)."""
    value = as_utc(value)
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def parse_timestamp(text: str | int | float) -> datetime:
    """Read an ISO-8601 date or timestamp (``2026-01-01``, ``...T00:00:00Z``, ``+02:00`` offsets).

    Values without an offset are UTC; a number is Unix epoch seconds. The one timestamp reader of
    the local plane: filters and stored row ``created`` values alike (a QueryError names the fix).
    """
    if isinstance(text, (int, float)):
        return datetime.fromtimestamp(text, tz=timezone.utc)
    raw = str(text).strip()
    candidate = raw
    if candidate[-1:] in ("z", "Z"):
        candidate = candidate[:-1] + "+00:00"
    candidate = candidate.replace(" ", "T", 1) if len(candidate) > 10 and candidate[10] == " " else candidate
    try:
        if len(candidate) == 10:
            parsed = datetime.combine(date.fromisoformat(candidate), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise QueryError(
            f"cannot read {text!r} as a timestamp; write an ISO-8601 time such as "
            "'2026-01-01T00:00:00Z' or '2026-01-01', or use now() - interval 7 day"
        ) from None
    return as_utc(parsed)
