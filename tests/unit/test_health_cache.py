"""The anonymous health route checks storage at most once per cache period, however many ask."""

from __future__ import annotations

import asyncio

from shared.operability.health import HealthCheck, HealthReport
from shared.values import utc_now


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_check() -> tuple[HealthCheck, list[int], asyncio.Event, Clock]:
    calls: list[int] = []
    release = asyncio.Event()
    clock = Clock()

    async def check() -> HealthReport:
        calls.append(1)
        await release.wait()
        return HealthReport(status="healthy", checked_at=utc_now(), dependencies=[])

    return HealthCheck(check, ttl_s=5, monotonic=clock), calls, release, clock


async def test_concurrent_requests_share_one_check() -> None:
    health, calls, release, _ = make_check()
    waiting = [asyncio.ensure_future(health.report()) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    reports = await asyncio.gather(*waiting)
    assert len(calls) == 1 and len({id(r) for r in reports}) == 1


async def test_a_report_is_reused_until_the_cache_period_ends() -> None:
    health, calls, release, clock = make_check()
    release.set()
    first = await health.report()
    clock.now = 4.9
    assert await health.report() is first
    clock.now = 5.1
    await health.report()
    assert len(calls) == 2
