"""Stage progress: the :class:`Progress` protocol the runs report to, and its reporters.

``progress`` is any object with ``start(stage, total=None)`` and ``update(stage, **counts)``
(stages ``pull``, ``transform``, ``push``); see ``cli/progress.py``. :class:`NullProgress` shows
nothing (non-TTY, ``--json``, Dagster). The ``report_*`` helpers turn a stage's live counters
into ``update`` calls: pull ``refs``/``pages``, transform ``candidates``/``rows``/``skipped``,
push ``rows``/``batches``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from .items import TransformItem

if TYPE_CHECKING:
    from .pull import PullStream
    from .transform import TransformStats

__all__ = ["NullProgress", "Progress", "as_progress", "report_pull", "report_push", "report_transform"]


class Progress(Protocol):
    def start(self, stage: str, total: int | None = None) -> None: ...

    def update(self, stage: str, **counts: int) -> None: ...


class NullProgress:
    """Progress that shows nothing (non-TTY, ``--json``, Dagster)."""

    def start(self, stage: str, total: int | None = None) -> None:
        return None

    def update(self, stage: str, **counts: int) -> None:
        return None


def as_progress(progress: Progress | None) -> Progress:
    """``progress``, or a :class:`NullProgress` for None."""
    return progress if progress is not None else NullProgress()


def report_pull(items: Iterable[TransformItem], stream: PullStream, progress: Progress) -> Iterator[TransformItem]:
    for item in items:
        progress.update("pull", refs=stream.stats.refs, pages=stream.stats.pages)
        yield item
    progress.update("pull", refs=stream.stats.refs, pages=stream.stats.pages)


def report_transform(progress: Progress) -> Callable[[TransformStats], None]:
    def on_transform(stats: TransformStats) -> None:
        progress.update("transform", candidates=stats.candidates, rows=stats.rows, skipped=stats.skipped)

    return on_transform


def report_push(progress: Progress) -> Callable[[int, int], None]:
    return lambda rows, batches: progress.update("push", rows=rows, batches=batches)
