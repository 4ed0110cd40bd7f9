"""What a push compares and rejects, in one value the CLI and the Dagster assets both build.

    PushPolicy(compare=True, on_conflict="overwrite", pipeline=None, row_check=None,
               max_invalid=0, state_root=None, quarantine_path=None)
    PushPolicy.for_pipeline(spec, *, row_check=None, state_root=None, quarantine_path=None)

- ``compare``: change-aware push (``engine.delta``): send only new and changed rows.
- ``on_conflict`` / ``pipeline`` / ``state_root``: ``keep_curated`` needs the pipeline's push
  state (``engine.pushstate``), under ``state_root`` (default: the push's checkpoint root).
- ``row_check(target) -> RowCheck | None``: builds the target's row check once the target is
  resolved (``datasets.schema.target_row_check``: its enforced schemas); rows it rejects go to
  ``quarantine.jsonl`` (``engine.quarantine``), above ``max_invalid`` nothing is pushed.
  ``quarantine_path`` is where a streamed push (``push_rows``) writes it; a file push writes it
  beside its input.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .delta import OnConflict
from .quarantine import RowCheck

if TYPE_CHECKING:
    from .spec import PipelineSpec

__all__ = ["PushPolicy", "RowCheckFactory"]

RowCheckFactory = Callable[[Any], "RowCheck | None"]  # (ResolvedTarget) -> check; None: nothing enforced


@dataclass(frozen=True)
class PushPolicy:
    compare: bool = True
    # The caller validated, deduplicated and id'd every row (a datasets upload's staging): send as is.
    trusted: bool = False
    on_conflict: OnConflict = "overwrite"
    pipeline: str | None = None
    row_check: RowCheckFactory | None = None
    max_invalid: int = 0
    state_root: Path | None = None
    quarantine_path: Path | None = None

    @classmethod
    def for_pipeline(
        cls,
        spec: PipelineSpec,
        *,
        row_check: RowCheckFactory | None = None,
        state_root: str | os.PathLike[str] | None = None,
        quarantine_path: str | os.PathLike[str] | None = None,
    ) -> PushPolicy:
        """The pipeline's options (``on_conflict``, ``max_invalid_rows``) for its pushes."""
        return cls(
            on_conflict=spec.options.on_conflict,
            pipeline=spec.name,
            row_check=row_check,
            max_invalid=spec.options.max_invalid_rows,
            state_root=Path(state_root) if state_root is not None else None,
            quarantine_path=Path(quarantine_path) if quarantine_path is not None else None,
        )
