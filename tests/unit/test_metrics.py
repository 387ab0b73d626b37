"""The metrics registry: totals since start and a sliding window, per integration and overall."""

from __future__ import annotations

from shared.operability.metrics import MAX_WINDOW_MINUTES, Counter, Metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_counts_add_up_per_integration_and_in_total():
    metrics = Metrics(clock=Clock())

    metrics.count(Counter.DELIVERED, "orders", 3)
    metrics.count(Counter.DELIVERED, "billing")
    metrics.count(Counter.FAILURES_ENDPOINT, "orders")

    snapshot = metrics.snapshot()
    assert snapshot.total.since_start["delivered"] == 4
    assert snapshot.integrations["orders"].since_start == {"delivered": 3, "failures_endpoint": 1}
    assert snapshot.total.since_start["parked"] == 0


def test_the_window_forgets_what_is_older_than_it_but_since_start_does_not():
    clock = Clock()
    metrics = Metrics(clock=clock)
    metrics.count(Counter.ENGINE_REQUEUES, "orders", 5)

    clock.now += 4 * 60
    metrics.count(Counter.ENGINE_REQUEUES, "orders", 2)

    snapshot = metrics.snapshot(window_minutes=3)
    assert snapshot.integrations["orders"].window["engine_requeues"] == 2
    assert snapshot.integrations["orders"].since_start["engine_requeues"] == 7


def test_buckets_older_than_the_longest_window_are_dropped():
    clock = Clock()
    metrics = Metrics(clock=clock)
    for _ in range(MAX_WINDOW_MINUTES + 30):
        metrics.count(Counter.RECEIVED, "orders")
        clock.now += 60

    series = metrics._series[(Counter.RECEIVED, "orders")]
    assert len(series.buckets) <= MAX_WINDOW_MINUTES
    assert series.total == MAX_WINDOW_MINUTES + 30


def test_nothing_and_negative_counts_are_ignored():
    metrics = Metrics(clock=Clock())

    metrics.count(Counter.DELIVERED, "orders", 0)

    assert metrics.snapshot().integrations == {}


def test_failure_counter_follows_the_origin():
    assert Counter.failure("catastrophic") is Counter.FAILURES_CATASTROPHIC
