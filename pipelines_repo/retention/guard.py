"""The guard: a day of a project's logs may be deleted only once every reader harvested it.

A *reader* is a pipeline (its ``dataset_version`` partitions) or an export automation (its
``export`` partitions) that reads the project. The retention room does not know Dagster: the
caller passes a :class:`HarvestSource` (``orchestration/retention.py`` builds one over the
Dagster instance; the CLI builds the same over ``$DAGSTER_HOME``). ``Reader.harvested(day)`` is
asked again right before each day is deleted, so it must read live state, not a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

__all__ = ["NO_GUARD", "HarvestSource", "Reader", "hold_reasons"]


@dataclass(frozen=True)
class Reader:
    name: str
    kind: str  # "pipeline" | "export"
    harvested: Callable[[date], bool]  # every window of that day materialized (live)
    reads: Callable[[date], bool] = lambda day: True  # False before the reader's first partition


class HarvestSource(Protocol):
    def readers(self, project_name: str, project_id: str) -> Sequence[Reader]: ...


class _NoReaders:
    def readers(self, project_name: str, project_id: str) -> Sequence[Reader]:
        return ()


NO_GUARD: HarvestSource = _NoReaders()


def hold_reasons(day: date, readers: Sequence[Reader]) -> list[str]:
    """Why ``day`` must be kept: one line per reader that reads it and has not harvested it."""
    return [
        f"{reader.kind} {reader.name!r} has not {'exported' if reader.kind == 'export' else 'materialized'} {day.isoformat()}"
        for reader in readers
        if reader.reads(day) and not reader.harvested(day)
    ]
