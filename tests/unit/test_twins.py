"""The twins' test affordances do what the tests built on them assume (their contract is tests/contract's)."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import StorageUnavailable
from tests.twins.clock import FakeTime
from tests.twins.queues import MemoryQueue


async def test_an_armed_fault_raises_for_its_calls_then_the_twin_works_again(fake_time: FakeTime):
    queue = MemoryQueue("inbound", fake_time.now)
    outage = StorageUnavailable("queue down")
    queue.arm("send", outage, times=2, after=1)

    await queue.send("first")
    results = await asyncio.gather(*(queue.send(text) for text in ("second", "third")), return_exceptions=True)
    await queue.send("fourth")

    assert results == [outage, outage]
    assert queue.sent == ["first", "fourth"] and queue.calls["send"] == 4


async def test_a_fault_armed_for_every_call_lasts_until_disarmed(fake_time: FakeTime):
    queue = MemoryQueue("inbound", fake_time.now)
    queue.arm("depth", StorageUnavailable("queue down"), times=None)

    for _ in range(3):
        with pytest.raises(StorageUnavailable):
            await queue.depth()
    queue.disarm("depth")

    assert await queue.depth() == 0


def test_arming_a_method_the_twin_does_not_have_is_an_error(fake_time: FakeTime):
    with pytest.raises(AttributeError):
        MemoryQueue("inbound", fake_time.now).arm("sned", StorageUnavailable("typo"))


async def test_calls_in_flight_at_once_are_measured(fake_time: FakeTime):
    queue = MemoryQueue("inbound", fake_time.now)

    await asyncio.gather(*(queue.send(str(n)) for n in range(5)))
    await queue.send("alone")

    assert queue.most_in_flight["send"] == 5


async def test_drain_takes_what_is_visible_on_the_clock_and_delays_are_recorded(fake_time: FakeTime):
    queue = MemoryQueue("inbound", fake_time.now)
    await queue.send("now")
    await queue.send("later", delay_s=30)

    first = [m.text for m in queue.drain()]
    fake_time.advance(30)
    second = [m.text for m in queue.drain()]

    assert (first, second, queue.delays) == (["now"], ["later"], [None, 30])
    assert queue.peek() == []
