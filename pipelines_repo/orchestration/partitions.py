"""Pipeline options -> time-window partitions, and partition keys <-> engine time windows.

Partitions follow the pipeline's ``partitions`` (``daily`` default, ``hourly``, ``weekly``),
``start_date`` (the first partition) and ``timezone`` (UTC default; windows follow local
midnight, so a Europe/Paris daily window is 23:00Z-23:00Z in winter). Only closed windows exist
(``end_offset=0``): the newest partition is the last window that has fully ended. Weekly windows
start on Monday. Hourly keys carry the UTC offset when the timezone is not UTC, so keys stay
unique across DST changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta

import dagster as dg

from ..engine.spec import PipelineOptions
from ..engine.window import TimeWindow

__all__ = [
    "closed_partition_keys",
    "last_closed_partition_key",
    "lookback_start",
    "partition_key_for_time",
    "partitions_def_for",
    "window_for_key",
    "windows_for_keys",
]


def partitions_def_for(options: PipelineOptions) -> dg.TimeWindowPartitionsDefinition:
    start = options.start_date.isoformat()
    tz = options.timezone
    if options.partitions == "hourly":
        fmt = "%Y-%m-%d-%H:%M" if tz == "UTC" else "%Y-%m-%d-%H:%M%z"
        first = datetime.combine(options.start_date, time())  # naive: midnight in ``tz``
        return dg.HourlyPartitionsDefinition(start_date=first, timezone=tz, fmt=fmt, end_offset=0)
    if options.partitions == "weekly":
        return dg.WeeklyPartitionsDefinition(start_date=start, timezone=tz, day_offset=1, end_offset=0)
    return dg.DailyPartitionsDefinition(start_date=start, timezone=tz, end_offset=0)


def window_for_key(partitions_def: dg.TimeWindowPartitionsDefinition, key: str) -> TimeWindow:
    """The engine's UTC ``[start, end)`` window of one partition."""
    window = partitions_def.time_window_for_partition_key(key)
    return TimeWindow.absolute(window.start, window.end)


def windows_for_keys(
    partitions_def: dg.TimeWindowPartitionsDefinition, keys: Iterable[str]
) -> dict[str, TimeWindow]:
    """``{partition key: engine window}`` in the order given."""
    return {key: window_for_key(partitions_def, key) for key in keys}


def closed_partition_keys(partitions_def: dg.TimeWindowPartitionsDefinition, now: datetime) -> Sequence[str]:
    return partitions_def.get_partition_keys(current_time=now)


def last_closed_partition_key(partitions_def: dg.TimeWindowPartitionsDefinition, now: datetime) -> str | None:
    """The newest window that has fully ended at ``now`` (None before the first one ends)."""
    window = partitions_def.get_prev_partition_window(now)
    if window is None:
        return None
    return partitions_def.get_partition_key_for_timestamp(window.start.timestamp())


def partition_key_for_time(
    partitions_def: dg.TimeWindowPartitionsDefinition, when: datetime, now: datetime
) -> str | None:
    """The key of the closed partition holding ``when`` (None if before the start or not closed)."""
    first = partitions_def.get_first_partition_window()
    if first is None or when < first.start:
        return None
    last = partitions_def.get_prev_partition_window(now)
    if last is None or when >= last.end:
        return None
    return partitions_def.get_partition_key_for_timestamp(when.timestamp())


def lookback_start(options: PipelineOptions, partitions_def: dg.TimeWindowPartitionsDefinition, now: datetime) -> datetime:
    """Start of the oldest partition the late-data sensor still re-checks: the window holding
    ``now - lookback_days`` (never before the first partition)."""
    moment = now - timedelta(days=options.lookback_days)
    first = partitions_def.get_first_partition_window()
    if first is not None and moment < first.start:
        return first.start
    key = partitions_def.get_partition_key_for_timestamp(moment.timestamp())
    return partitions_def.time_window_for_partition_key(key).start
