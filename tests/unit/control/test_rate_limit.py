"""Rate limits on the twins: shared slots cap attempts per slot across instances, spread over the slot."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from shared.control.limiter import RateLimiter
from shared.control.models import RateLimitPolicy
from shared.delivery.engine import Deferred, Delivered
from tests.twins.clock import FakeTime
from tests.twins.control import MemoryRateSlots
from tests.twins.senders import ScriptedSender, ok
from tests.twins.stores import MemoryStores
from tests.unit.control.build import controlled
from tests.unit.on_twins import make_config


class Instance:
    """One instance's limiter on the shared slots, recording the times its tokens were used."""

    def __init__(self, slots: MemoryRateSlots, time: FakeTime) -> None:
        self.time = time
        self.limiter = RateLimiter(slots, clock=lambda: time.now().timestamp(), sleep=self._sleep)
        self.used: list[float] = []

    async def _sleep(self, seconds: float) -> None:
        # Each waiter sleeps on its own: the shared clock moves to the latest wake-up (instances run side by side).
        self.time.advance(max(0.0, seconds))

    async def attempt(self, policy: RateLimitPolicy, *, max_wait_s: float = 60.0) -> bool:
        waited = await self.limiter.acquire("orders", policy, max_wait_s=max_wait_s)
        if waited is None:
            return False
        self.used.append(self.time.now().timestamp())
        return True


@pytest.mark.parametrize(
    ("per_second", "slot_s", "capacity"), [(20, 1, 20), (1, 1, 1), (0.5, 10, 5), (2.5, 10, 25), (1000, 1, 1000)]
)
def test_a_rate_becomes_whole_tokens_per_slot(per_second, slot_s, capacity):
    policy = RateLimitPolicy(per_second=per_second)
    assert (policy.slot_s, policy.capacity) == (slot_s, capacity)


@pytest.mark.parametrize("per_second", [0, 0.05, 0.25, 1000.1, -1])
def test_a_rate_that_is_not_a_tenth_between_0_1_and_1000_is_refused(per_second):
    with pytest.raises(ValueError, match="per_second"):
        RateLimitPolicy(per_second=per_second)


async def test_two_instances_together_start_no_more_than_the_limit_in_any_slot(fake_time):
    # Given two instances sharing the slots of a 20/s limit, each with 60 messages to deliver
    slots = MemoryRateSlots()
    policy = RateLimitPolicy(per_second=20)
    first, second = Instance(slots, fake_time), Instance(slots, fake_time)

    # When they take turns asking for tokens
    for _ in range(60):
        assert await first.attempt(policy)
        assert await second.attempt(policy)

    # Then no one-second slot saw more than 20 attempts, and the 120 took about 6 s
    per_slot = Counter(int(t) for t in first.used + second.used)
    assert max(per_slot.values()) <= 20
    span = max(first.used + second.used) - min(first.used + second.used)
    assert 5.0 <= span <= 7.0


async def test_tokens_of_a_slot_are_spread_over_it_not_bunched_at_its_start(fake_time):
    fake_time.now_value = fake_time.now_value.replace(microsecond=0)
    instance = Instance(MemoryRateSlots(), fake_time)
    policy = RateLimitPolicy(per_second=4)

    for _ in range(4):
        await instance.attempt(policy)

    start = instance.used[0]
    assert [round(t - start, 2) for t in instance.used] == [0.0, 0.25, 0.5, 0.75]


async def test_a_caller_that_would_wait_too_long_gets_no_token(fake_time):
    # Given a slot of 2 per second already used up for the next few seconds by another instance
    slots = MemoryRateSlots()
    policy = RateLimitPolicy(per_second=2)
    busy = Instance(slots, fake_time)
    now = int(fake_time.now().timestamp())
    for slot in range(now, now + 6):
        await slots.claim("orders", slot, capacity=2, want=2)

    # When this instance may wait at most one second
    assert await busy.attempt(policy, max_wait_s=1.0) is False


async def test_a_message_over_the_limit_is_deferred_unchanged_and_not_counted_as_an_attempt(stores, fake_time):
    # Given an integration limited to 1 per second whose next slots are all taken
    await stores.integrations.put(make_config("orders", rate_limit={"per_second": 1}))
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    now = int(fake_time.now().timestamp())
    for slot in range(now, now + 10):
        await stores.rate_slots.claim("orders", slot, capacity=1, want=1)
    [envelope] = await c.arrive("1")

    # When the engine takes the message
    [message] = stores.inbound.drain()
    outcome = await c.engine.process_message(message.body, queue_message_id=message.id)

    # Then it is back on inbound for a while, untouched: no attempt, no delay action
    assert isinstance(outcome, Deferred) and outcome.delay_s >= 5
    assert c.sender.sent == []
    [again] = stores.inbound.peek()
    text = again.body.decode()
    assert '"delay_actions":0' in text and '"attempts":0' in text and envelope.id in text
    assert c.metrics.snapshot().integrations["orders"].since_start["rate_deferred"] == 1


async def test_the_engine_paces_each_attempt_including_endpoint_retries(stores: MemoryStores, fake_time):
    # Given a 2/s limit and a receiver that fails once then succeeds, with two endpoint attempts per run
    await stores.integrations.put(make_config("orders", rate_limit={"per_second": 2}))
    from tests.twins.senders import status

    c = controlled(stores, fake_time, ScriptedSender([status(503), ok()]), endpoint_attempts=2)
    await c.arrive("1")

    # When the engine delivers it
    [outcome] = await c.run_inbound()

    # Then both attempts took a token (two claims' worth of slot use)
    assert isinstance(outcome, Delivered)
    now = int(fake_time.now().timestamp())
    used = sum(stores.rate_slots.claimed("orders", slot) for slot in range(now - 5, now + 5))
    assert used >= 2


async def test_concurrent_callers_in_one_instance_share_its_claims(fake_time):
    slots = MemoryRateSlots()
    limiter = RateLimiter(slots, clock=lambda: fake_time.now().timestamp(), sleep=lambda s: asyncio.sleep(0))
    policy = RateLimitPolicy(per_second=20)

    results = await asyncio.gather(*(limiter.acquire("orders", policy, max_wait_s=5) for _ in range(10)))

    assert all(r is not None for r in results)
    # Blocks of 5: two claims served ten callers.
    assert slots.calls["claim"] == 2
