"""The reader thread of ingest: order kept, the producer's error raised where it happened, early stop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from prefloop.data.ingest import prefetched


def test_items_arrive_in_order_across_chunks() -> None:
    assert list(prefetched(iter(range(2345)), chunk=100, depth=2)) == list(range(2345))


def test_producer_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield from range(250)
        raise ValueError("line 251 is broken")

    seen = []
    with pytest.raises(ValueError, match="line 251"):
        for item in prefetched(items(), chunk=100):
            seen.append(item)
    assert seen == list(range(250))


def test_consumer_stopping_early_stops_the_producer() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(1_000_000):
            produced.append(i)
            yield i

    for item in prefetched(items(), chunk=10, depth=2):
        if item == 5:
            break
    assert not any(t.name == "prefloop-ingest-reader" and t.is_alive() for t in threading.enumerate())
    assert len(produced) < 1000, "the producer stops within a few chunks of the consumer"
