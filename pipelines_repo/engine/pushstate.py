"""A pipeline's push state: the version its last push produced and the rows it keeps as curated.

    PipelinePushState.load(root, dataset_id, pipeline) -> PipelinePushState
    state.record(version, kept_ids, sent=...) ; state.save()

Stored beside the push checkpoints, ``<root>/dataset_<dataset id>/pipeline_<name>.json``::

    {"pipeline": ..., "dataset_id": ..., "last_version": "<xact id>", "kept_ids": [...]}

``root`` is the push checkpoint root both paths already have: ``--root`` (default ``bt-sync``) for
the CLI, ``$DAGSTER_HOME/bt-sync`` for the Dagster assets. ``keep_curated`` (``engine.delta``)
reads the dataset as of ``last_version`` to tell someone's edits from this pipeline's own writes.
``last_version`` only moves when a push sent rows (a push that sent nothing must not make edits
made since look like ours); ``kept_ids`` survive until a push with ``on_conflict="overwrite"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .artifacts import sanitize_segment
from .jsonl import read_json, write_json_atomic

__all__ = ["PipelinePushState", "push_state_path"]


def push_state_path(root: str | os.PathLike[str], dataset_id: str, pipeline: str) -> Path:
    return Path(root) / f"dataset_{sanitize_segment(dataset_id)}" / f"pipeline_{sanitize_segment(pipeline)}.json"


@dataclass
class PipelinePushState:
    path: Path
    pipeline: str
    dataset_id: str
    last_version: str | None = None
    kept_ids: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, root: str | os.PathLike[str], dataset_id: str, pipeline: str) -> PipelinePushState:
        path = push_state_path(root, dataset_id, pipeline)
        state = cls(path, pipeline, dataset_id)
        try:
            data = read_json(path)
        except (OSError, ValueError):
            return state  # missing or damaged: no previous push known (keep_curated acts as overwrite)
        if isinstance(data, dict):
            version = data.get("last_version")
            state.last_version = str(version) if version is not None else None
            state.kept_ids = {str(i) for i in data.get("kept_ids") or []}
        return state

    def record(self, version: str | None, kept_ids: Iterable[str], *, sent: bool, keep_curated: bool) -> None:
        """After a successful push: move ``last_version`` if rows were sent; remember kept rows."""
        if sent or self.last_version is None:
            self.last_version = version
        self.kept_ids = (self.kept_ids | set(kept_ids)) if keep_curated else set()

    def save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "pipeline": self.pipeline,
                "dataset_id": self.dataset_id,
                "last_version": self.last_version,
                "kept_ids": sorted(self.kept_ids),
            },
        )
