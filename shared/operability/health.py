"""Dependency checks behind GET /api/health: is each store reachable, and how fast.

The route is anonymous, so anyone can call it as often as they like: a report is reused for
`HEALTH_CACHE_S`, and callers arriving while a check runs wait for that one check (one set of
storage probes at a time, however many requests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pydantic import BaseModel

from shared.values import UtcDatetime, utc_now

#: A report answers every health request for this long.
HEALTH_CACHE_S = 5.0

#: One dependency check: its name in the report, and a call that returns when the dependency answers.
HealthProbe = tuple[str, Callable[[], Awaitable[object]]]


class DependencyHealth(BaseModel):
    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["healthy", "unhealthy"]
    checked_at: UtcDatetime
    dependencies: list[DependencyHealth]


async def _probe(name: str, check: Callable[[], Awaitable[object]], timeout_s: float) -> DependencyHealth:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except Exception as exc:
        # The type is enough to act on; messages may carry account names or URLs.
        return DependencyHealth(
            name=name, ok=False, latency_ms=_elapsed_ms(started), error=f"{type(exc).__name__}: unreachable"
        )
    return DependencyHealth(name=name, ok=True, latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


async def check_health(probes: Sequence[HealthProbe], *, timeout_s: float) -> HealthReport:
    """Run every probe at once, each bounded by `timeout_s`."""
    dependencies = list(await asyncio.gather(*(_probe(name, check, timeout_s) for name, check in probes)))
    status: Literal["healthy", "unhealthy"] = "healthy" if all(d.ok for d in dependencies) else "unhealthy"
    return HealthReport(status=status, checked_at=utc_now(), dependencies=dependencies)


class HealthCheck:
    """`check_health` behind a short cache and a single flight (see the module docstring)."""

    def __init__(
        self,
        check: Callable[[], Awaitable[HealthReport]],
        *,
        ttl_s: float = HEALTH_CACHE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._report: HealthReport | None = None
        self._checked_at = 0.0
        self._running: asyncio.Task[HealthReport] | None = None

    async def report(self) -> HealthReport:
        if self._report is not None and self._monotonic() - self._checked_at < self._ttl_s:
            return self._report
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh())
        # shield: a caller that gives up must not cancel the check the others wait for.
        return await asyncio.shield(self._running)

    async def _refresh(self) -> HealthReport:
        try:
            report = await self._check()
            self._report, self._checked_at = report, self._monotonic()
            return report
        finally:
            self._running = None
