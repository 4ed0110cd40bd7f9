"""Progress display for the pipeline commands: a rich progress bar on a terminal, nothing otherwise.

``make_progress(enabled)`` returns a context manager implementing the engine's ``Progress``
protocol (``start(stage, total=None)`` / ``update(stage, **counts)``, see ``engine/progress.py``).
It is enabled only when stderr is a TTY and neither ``--json`` nor ``--quiet`` was given; then
it draws one line per stage on stderr, e.g.::

    Pulling refs         ━━━━━━━━━━━━━━━━━━━━  1,000 refs | 1 pages
    Transforming         ━━━━━━━━━━━━━━━━━━━━  640/1,000 candidates (64%) | output rows: 612 | skipped: 0
    Uploading rows       ━━━━━━━━━━━━━━━━━━━━  600 rows | 1 batches
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from ..engine.progress import NullProgress

__all__ = ["NullProgress", "RichProgress", "make_progress", "progress_enabled"]

_LABELS = {"pull": "Pulling refs", "transform": "Transforming", "push": "Uploading rows",
           "read": "Reading file", "compare": "Comparing rows"}


def progress_enabled(*, json_output: bool, quiet: bool = False, stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    if json_output or quiet:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _describe(stage: str, counts: dict[str, int], total: int | None) -> str:
    if stage == "pull":
        return f"{counts.get('refs', 0):,} refs | {counts.get('pages', 0):,} pages"
    if stage == "transform":
        done = counts.get("candidates", 0)
        head = f"{done:,}/{total:,} candidates ({done / total:.0%})" if total else f"{done:,} candidates"
        return f"{head} | output rows: {counts.get('rows', 0):,} | skipped: {counts.get('skipped', 0):,}"
    if stage == "push":
        return f"{counts.get('rows', 0):,} rows | {counts.get('batches', 0):,} batches"
    return ", ".join(f"{key}: {value:,}" for key, value in counts.items())


class RichProgress:
    """One rich task per stage on stderr (transient: the final summary replaces it)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._console = Console(file=stream if stream is not None else sys.stderr)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<16}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int | None] = {}
        self._counts: dict[str, dict[str, int]] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, stage: str, total: int | None = None) -> None:
        self._totals[stage] = total
        self._counts.setdefault(stage, {})
        if stage in self._tasks:
            self._progress.update(self._tasks[stage], total=total)
            return
        self._tasks[stage] = self._progress.add_task(
            _LABELS.get(stage, stage), total=total, detail=_describe(stage, {}, total)
        )

    def update(self, stage: str, **counts: int) -> None:
        if stage not in self._tasks:
            self.start(stage)
        self._counts[stage].update(counts)
        current = self._counts[stage]
        completed = current.get({"pull": "refs", "transform": "candidates", "push": "rows"}.get(stage, ""), 0)
        self._progress.update(
            self._tasks[stage],
            completed=completed,
            detail=_describe(stage, current, self._totals.get(stage)),
        )


class _NullContext(NullProgress):
    def __enter__(self) -> _NullContext:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def make_progress(enabled: bool, stream: TextIO | None = None) -> RichProgress | _NullContext:
    """A rich progress display when ``enabled``, else a no-op (both are context managers)."""
    return RichProgress(stream) if enabled else _NullContext()
