"""Braintrust dataset pipelines, run continuously on Dagster.

``from pipelines_repo import DatasetPipeline`` is the SDK's ``DatasetPipeline`` plus keyword
orchestration options (see ``pipelines_repo.engine.spec``). It is imported lazily so that
rooms that don't need the braintrust SDK (e.g. the local data plane) stay light.
"""

from typing import Any

__all__ = ["DatasetPipeline"]


def __getattr__(name: str) -> Any:
    if name == "DatasetPipeline":
        from pipelines_repo.engine.spec import DatasetPipeline

        return DatasetPipeline
    raise AttributeError(f"module 'pipelines_repo' has no attribute {name!r}")
