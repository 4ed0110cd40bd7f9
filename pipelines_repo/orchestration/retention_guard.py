"""The guard's state read from Dagster: which days each reader of a project has harvested.

A reader is any time-partitioned asset that names the project it reads: a pipeline's
``<pipeline>/dataset_version`` (its ``source_project`` metadata), or an export automation's
``<name>/export`` (tag ``braintrust/source_project``, or the same metadata). A day is harvested
when every partition whose window overlaps it is materialized; days before a reader's first
partition are not read by it. ``harvested`` asks the instance each time it is called (the guard
re-checks right before each delete).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.definitions.partitions.utils.time_window import TimeWindow as DagsterTimeWindow

from ..retention.guard import Reader
from .translator import META_PIPELINE

__all__ = ["TAG_SOURCE_PROJECT", "InstanceHarvest"]

TAG_SOURCE_PROJECT = "braintrust/source_project"
_READER_KINDS = {"dataset_version": "pipeline", "export": "export"}


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def _day_window(day: date) -> DagsterTimeWindow:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return DagsterTimeWindow(start, start + timedelta(days=1))


class InstanceHarvest:
    """A :class:`~pipelines_repo.retention.guard.HarvestSource` over a Dagster instance."""

    def __init__(self, instance: dg.DagsterInstance, assets: Iterable[dg.AssetsDefinition | dg.AssetSpec]):
        self.instance = instance
        self._found: list[tuple[str, str, str, dg.AssetKey, dg.TimeWindowPartitionsDefinition]] = []
        for item in assets:
            for spec in item.specs if isinstance(item, dg.AssetsDefinition) else [item]:
                kind = _READER_KINDS.get(spec.key.path[-1])
                pdef = spec.partitions_def
                if kind is None or not isinstance(pdef, dg.TimeWindowPartitionsDefinition):
                    continue
                project = spec.tags.get(TAG_SOURCE_PROJECT) or _value(spec.metadata.get("source_project"))
                if project:
                    name = _value(spec.metadata.get(META_PIPELINE)) or spec.key.path[0]
                    self._found.append((str(project), str(name), kind, spec.key, pdef))

    def readers(self, project_name: str, project_id: str) -> Sequence[Reader]:
        return [
            Reader(name, kind, harvested=self._harvested_fn(key, pdef), reads=self._reads_fn(pdef))
            for project, name, kind, key, pdef in self._found
            if project in (project_name, project_id)
        ]

    def _harvested_fn(self, key: dg.AssetKey, pdef: dg.TimeWindowPartitionsDefinition):
        def harvested(day: date) -> bool:
            keys = pdef.get_partition_keys_in_time_window(_day_window(day))
            done = self.instance.get_materialized_partitions(key)
            return bool(keys) and all(k in done for k in keys)

        return harvested

    @staticmethod
    def _reads_fn(pdef: dg.TimeWindowPartitionsDefinition):
        first = pdef.get_first_partition_window()

        def reads(day: date) -> bool:
            return first is None or _day_window(day).end > first.start

        return reads
