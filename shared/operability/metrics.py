"""Counters of what the engine did, per integration: since this instance started, and recently.

Every decision point bumps one counter (`Metrics.count`). The registry keeps, per (counter,
integration), a total since start and per-minute buckets for a sliding window, so
GET /api/metrics can answer both "since start" and "in the current error window". When
Application Insights is configured the same increments also go to an OpenTelemetry counter,
which aggregates across instances; locally the OTel API is a no-op.

These are per-instance numbers: `Services` owns one registry, so each Functions instance (one
event loop, one `Services`) counts what it did since it started.
The shared, cross-instance truth for retry decisions stays in the `errorwindow` table.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from enum import StrEnum

from opentelemetry import metrics as otel_metrics
from pydantic import BaseModel

#: Minutes of per-minute buckets kept (the longest window anyone asks for).
MAX_WINDOW_MINUTES = 60


class Counter(StrEnum):
    RECEIVED = "received"
    DELIVERED = "delivered"
    ENDPOINT_RETRIES = "endpoint_retries"
    ENGINE_REQUEUES = "engine_requeues"
    DELAY_ACTIONS = "delay_actions"
    FAILURES_ENDPOINT = "failures_endpoint"
    FAILURES_ENGINE = "failures_engine"
    FAILURES_INGEST = "failures_ingest"
    FAILURES_CATASTROPHIC = "failures_catastrophic"
    FAILURES_CONFIG = "failures_config"
    FAILURES_PICKUP = "failures_pickup"
    #: Items a pickup source gave up and Rebound enqueued (or parked).
    PICKED = "picked"
    PARKED = "parked"
    REINSERTED = "reinserted"
    JOB_ITEMS = "job_items"
    #: Messages put in the hold of a paused integration (not attempted), and handed back by its drain.
    HELD = "held"
    RELEASED = "released"
    #: Messages sent back to `inbound` for a while because the rate limit had no turn for them soon.
    RATE_DEFERRED = "rate_deferred"
    CIRCUIT_OPENED = "circuit_opened"
    #: Copies of a message already delivered (its claim-check blob was gone): dropped, not failures.
    DUPLICATES = "duplicates"

    @classmethod
    def failure(cls, origin: str) -> Counter:
        return cls(f"failures_{origin}")


class CounterSnapshot(BaseModel):
    since_start: dict[str, int]
    window: dict[str, int]


class MetricsSnapshot(BaseModel):
    started_at_epoch_s: float
    window_minutes: int
    total: CounterSnapshot
    integrations: dict[str, CounterSnapshot]
    #: Messages waiting in the hold per paused integration: shared by every instance, read from storage.
    held: dict[str, int] = {}


class _Series:
    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.total = 0
        self.buckets: deque[list[int]] = deque()  # [minute, count], oldest first

    def add(self, n: int, minute: int) -> None:
        self.total += n
        if self.buckets and self.buckets[-1][0] == minute:
            self.buckets[-1][1] += n
        else:
            self.buckets.append([minute, n])
        while self.buckets and self.buckets[0][0] <= minute - MAX_WINDOW_MINUTES:
            self.buckets.popleft()

    def in_window(self, minute: int, minutes: int) -> int:
        return sum(count for at, count in self.buckets if at > minute - minutes)


class Metrics:
    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._started = clock()
        self._series: defaultdict[tuple[Counter, str], _Series] = defaultdict(_Series)
        # Sync functions run in the worker's thread pool; async ones on the loop: both count here.
        self._lock = threading.Lock()
        self._otel = otel_metrics.get_meter("rebound").create_counter(
            "rebound.events", description="engine events by kind and integration"
        )

    def count(self, counter: Counter, integration: str, n: int = 1) -> None:
        if n <= 0:
            return
        minute = int(self._clock() // 60)
        with self._lock:
            self._series[(counter, integration)].add(n, minute)
        self._otel.add(n, {"event": counter.value, "integration": integration})

    def snapshot(self, *, window_minutes: int = 3) -> MetricsSnapshot:
        minutes = max(1, min(window_minutes, MAX_WINDOW_MINUTES))
        minute = int(self._clock() // 60)
        total_start: dict[str, int] = {c.value: 0 for c in Counter}
        total_window: dict[str, int] = {c.value: 0 for c in Counter}
        integrations: dict[str, CounterSnapshot] = {}
        with self._lock:
            items = [(key, series.total, series.in_window(minute, minutes)) for key, series in self._series.items()]
        for (counter, integration), since_start, window in sorted(items):
            entry = integrations.setdefault(integration, CounterSnapshot(since_start={}, window={}))
            entry.since_start[counter.value] = since_start
            entry.window[counter.value] = window
            total_start[counter.value] += since_start
            total_window[counter.value] += window
        return MetricsSnapshot(
            started_at_epoch_s=self._started,
            window_minutes=minutes,
            total=CounterSnapshot(since_start=total_start, window=total_window),
            integrations=integrations,
        )
