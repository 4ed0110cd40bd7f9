"""Read ahead of a consumer: fetch the next page while the current one is being processed.

A pull is I/O (waiting on `/btql`) and transform + push are work on the rows already fetched;
without read-ahead the two add up instead of overlapping. At most `depth` pages wait in the
queue, so memory stays bounded by the page size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")

_ITEM, _DONE, _ERROR = range(3)


def read_ahead(source: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Yield what `source` yields, while a worker thread produces up to `depth` items ahead.

    Errors in `source` are raised in the consumer; closing the generator stops the worker at its
    next item.
    """
    buffer: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: int, value: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in source:
                if not put(_ITEM, item):
                    return
            put(_DONE, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_ERROR, exc)

    worker = threading.Thread(target=work, name="bt-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == _ITEM:
                yield value  # type: ignore[misc]
            elif kind == _DONE:
                return
            else:
                raise value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=60)
