"""Read-ahead: the next page is fetched while the consumer works, bounded, errors surface."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines_repo.engine.readahead import read_ahead


def test_yields_everything_in_order_and_overlaps_the_work() -> None:
    def slow_pages():
        for i in range(6):
            time.sleep(0.05)  # the "request"
            yield i

    started = time.monotonic()
    seen = []
    for page in read_ahead(slow_pages()):
        time.sleep(0.05)  # the "processing" of the page
        seen.append(page)
    elapsed = time.monotonic() - started
    assert seen == list(range(6))
    assert elapsed < 0.5  # sequential would take 0.6 s; overlapped about 0.35 s


def test_stays_bounded_ahead_of_the_consumer() -> None:
    produced = []

    def pages():
        for i in range(100):
            produced.append(i)
            yield i

    stream = read_ahead(pages(), depth=2)
    assert next(stream) == 0
    time.sleep(0.2)
    assert len(produced) <= 4  # one handed over, two queued, one waiting to be queued
    stream.close()


def test_errors_reach_the_consumer_after_the_pages_before_them() -> None:
    def failing():
        yield 1
        raise RuntimeError("btql 400: bad filter")

    stream = read_ahead(failing())
    assert next(stream) == 1
    with pytest.raises(RuntimeError, match="bad filter"):
        next(stream)


def test_closing_early_stops_the_worker() -> None:
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    stream = read_ahead(endless())
    assert next(stream) == 0
    stream.close()
    time.sleep(0.3)
    assert not any(t.name == "bt-read-ahead" and t.is_alive() for t in threading.enumerate())
