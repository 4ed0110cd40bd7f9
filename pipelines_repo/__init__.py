"""Braintrust dataset pipelines, run continuously on Dagster.

``from pipelines_repo import DatasetPipeline`` is the SDK's ``DatasetPipeline`` plus keyword
orchestration options (see ``pipelines_repo.engine.spec``); ``from pipelines_repo import
DatasetFile`` declares a dataset kept in sync with a file (``pipelines_repo.datasets.declaration``);
``from pipelines_repo import ExportAutomation`` declares a periodic export (``pipelines_repo.export.automation``).
``from pipelines_repo import RetentionPolicy`` declares how long logs are kept (``pipelines_repo.retention.spec``).
All are imported lazily so that rooms that don't need them (e.g. the local data plane) stay light.
"""

from typing import Any

__all__ = ["DatasetFile", "DatasetPipeline", "ExportAutomation", "RetentionPolicy"]


def __getattr__(name: str) -> Any:
    if name == "DatasetPipeline":
        from pipelines_repo.engine.spec import DatasetPipeline

        return DatasetPipeline
    if name == "DatasetFile":
        from pipelines_repo.datasets.declaration import DatasetFile

        return DatasetFile
    if name == "ExportAutomation":
        from pipelines_repo.export.automation import ExportAutomation

        return ExportAutomation
    if name == "RetentionPolicy":
        from pipelines_repo.retention.spec import RetentionPolicy

        return RetentionPolicy
    raise AttributeError(f"module 'pipelines_repo' has no attribute {name!r}")
