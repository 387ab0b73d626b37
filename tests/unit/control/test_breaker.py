"""The circuit breaker on the twins: it opens on transient failures, probes after the cooldown, closes on success."""

from __future__ import annotations

import pytest

from shared.control.models import BREAKER_ACTOR, CIRCUIT_OPEN, BreakerPhase, PauseRequest
from shared.delivery.engine import Held, RetryScheduled
from tests.twins.senders import ScriptedSender, ok, status
from tests.twins.stores import MemoryStores
from tests.unit.control.build import Controlled, actor, controlled
from tests.unit.on_twins import make_config

BREAKER = {"enabled": True, "failure_threshold": 3, "window_minutes": 5, "cooldown_seconds": 30}


@pytest.fixture
async def orders(stores: MemoryStores) -> None:
    await stores.integrations.put(make_config("orders", circuit_breaker=BREAKER))


async def tripped(c: Controlled) -> None:
    """Three messages fail transiently: the breaker opens."""
    await c.arrive("1", "2", "3")
    for message in c.stores.inbound.drain():
        await c.engine.process_message(message.body, queue_message_id=message.id)


async def test_transient_failures_reaching_the_threshold_open_the_breaker_and_pause(stores, fake_time, orders):
    # Given a receiver answering 503
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))

    # When three messages fail transiently
    await c.arrive("1", "2", "3")
    outcomes = [await c.engine.process_message(m.body, queue_message_id=m.id) for m in stores.inbound.drain()]

    # Then the first two are retried as usual, the third trips the breaker and is held with the next arrivals
    assert [type(o) for o in outcomes] == [RetryScheduled, RetryScheduled, Held]
    status_now = await c.control.status("orders")
    assert status_now.paused is not None
    assert (status_now.paused.by, status_now.paused.reason) == (BREAKER_ACTOR, CIRCUIT_OPEN)
    assert status_now.breaker is not None and status_now.breaker.phase is BreakerPhase.OPEN
    assert status_now.breaker.failures == 3
    await c.arrive("4")
    fake_time.advance(1)
    sent_before = len(c.sender.sent)
    assert [type(o) for o in await c.run_inbound()][-1] is Held
    assert len(c.sender.sent) == sent_before


async def test_no_probe_before_the_cooldown_and_one_probe_after_it(stores, fake_time, orders):
    # Given an open breaker with messages held
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    sent = len(c.sender.sent)

    # When the timer ticks before the cooldown is over
    fake_time.advance(10)
    await c.control.tick()
    await c.run_drains()

    # Then nothing was attempted
    assert len(c.sender.sent) == sent

    # When it ticks after the cooldown and the receiver still fails
    fake_time.advance(25)
    await c.control.tick()
    await c.run_drains()

    # Then exactly one probe went out, and the breaker is open again with the probe message still held first
    assert len(c.sender.sent) == sent + 1
    after = await c.control.status("orders")
    assert after.breaker is not None and after.breaker.phase is BreakerPhase.OPEN and after.breaker.trips == 2
    assert after.held >= 1


async def test_a_successful_probe_closes_the_breaker_and_drains_the_hold_in_order(stores, fake_time, orders):
    # Given an open breaker holding messages 4..6 that arrived after it opened
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    await c.arrive("4", "5", "6")
    await c.run_inbound()
    before = len(c.sender.sent)

    # When the receiver recovers and the cooldown passes
    c.sender.script = [ok()]
    fake_time.advance(31)
    await c.control.tick()
    await c.run_drains()

    # Then the probe succeeded, the breaker closed, and the held messages went out in arrival order
    after = await c.control.status("orders")
    assert after.breaker is not None and after.breaker.phase is BreakerPhase.CLOSED
    assert after.paused is None and after.held == 0
    delivered = [d.body.decode() for d in c.sender.sent[before:]]
    assert [b for b in delivered if b in ("4", "5", "6")] == ["4", "5", "6"]


async def test_a_closed_breaker_does_not_reopen_on_the_failures_counted_before_it_closed(stores, fake_time, orders):
    # Given a breaker that opened and closed again within one window
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    c.sender.script = [ok()]
    fake_time.advance(31)
    await c.control.tick()
    await c.run_drains()
    await c.run_inbound()

    # When one more message fails transiently
    c.sender.script = [status(503)]
    await c.arrive("again")
    [message] = stores.inbound.drain()
    outcome = await c.engine.process_message(message.body, queue_message_id=message.id)

    # Then it is retried as usual: the breaker stays closed
    assert type(outcome) is RetryScheduled
    assert (await c.gate.refresh("orders")).breaker.phase is BreakerPhase.CLOSED


async def test_resume_closes_an_open_breaker(stores, fake_time, orders):
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    c.sender.script = [ok()]

    resumed = await c.control.resume("orders", actor=actor("ops"))
    await c.run_drains()

    assert resumed.breaker is not None and resumed.breaker.phase is BreakerPhase.CLOSED
    assert (await c.control.status("orders")).held == 0


async def test_a_person_paused_integration_is_not_probed_when_the_cooldown_ends(stores, fake_time, orders):
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    await c.control.pause("orders", PauseRequest(reason="investigating"), actor=actor("ops"))
    sent = len(c.sender.sent)

    fake_time.advance(60)
    await c.control.tick()
    await c.run_drains()

    assert len(c.sender.sent) == sent
    assert (await c.control.status("orders")).paused.by == "ops"  # type: ignore[union-attr]


async def test_switching_the_breaker_off_while_open_lets_go_of_its_pause(stores, fake_time, orders):
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    c.sender.script = [ok()]

    await stores.integrations.put(make_config("orders"))
    await c.control.tick()
    await c.run_drains()

    after = await c.control.status("orders")
    assert (after.paused, after.held, after.state) == (None, 0, "running")


async def test_a_breaker_that_is_not_enabled_never_opens(stores, fake_time):
    await stores.integrations.put(make_config("orders", circuit_breaker={**BREAKER, "enabled": False}))
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))

    await tripped(c)

    assert (await c.control.status("orders")).paused is None


async def test_a_permanent_failure_does_not_count_toward_the_breaker(stores, fake_time, orders):
    c = controlled(stores, fake_time, ScriptedSender([status(400)]))

    await tripped(c)
    await c.arrive("4")
    outcomes = await c.run_inbound()

    assert (await c.control.status("orders")).paused is None
    assert all(type(o) is not Held for o in outcomes)


async def test_the_probe_message_is_delivered_once_when_it_succeeds(stores, fake_time, orders):
    # Given an open breaker whose hold has one message
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))
    await tripped(c)
    await c.arrive("only")
    await c.run_inbound()
    c.sender.script = [ok()]
    before = len(c.sender.sent)

    # When the probe runs after the cooldown
    fake_time.advance(31)
    await c.control.tick()
    await c.run_drains()

    # Then the probe was the oldest held message, and every held one, "only" included, went out once in order
    # (the retries of 1 and 2 came back while it was open and were held at their arrival positions)
    assert [d.body.decode() for d in c.sender.sent[before:]] == ["1", "2", "3", "only"]
    assert await c.run_inbound() == []
