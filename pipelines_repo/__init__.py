"""Braintrust dataset pipelines, run continuously on Dagster.

``from pipelines_repo import DatasetPipeline`` is the SDK's ``DatasetPipeline`` plus keyword
orchestration options (see ``pipelines_repo.engine.spec``); ``from pipelines_repo import
DatasetFile`` declares a dataset kept in sync with a file (``pipelines_repo.datasets.declaration``);
``RetentionPolicy`` how long logs are kept (``pipelines_repo.retention.spec``).
All are imported lazily so that rooms that don't need them (e.g. the local data plane) stay light.
"""

from typing import Any

__all__ = ["DatasetFile", "DatasetPipeline", "RetentionPolicy"]


def __getattr__(name: str) -> Any:
    if name == "DatasetPipeline":
        from pipelines_repo.engine.spec import DatasetPipeline

        return DatasetPipeline
    if name == "DatasetFile":
        from pipelines_repo.datasets.declaration import DatasetFile

        return DatasetFile
    if name == "RetentionPolicy":
        from pipelines_repo.retention.spec import RetentionPolicy

        return RetentionPolicy
    raise AttributeError(f"module 'pipelines_repo' has no attribute {name!r}")
