"""Pause and resume on the twins: held messages are not attempted, never dropped, and go out in arrival order."""

from __future__ import annotations

import pytest

from shared.control.models import BREAKER_ACTOR, PauseRequest
from shared.delivery.adapters.base import Delivery, Response
from shared.delivery.engine import Delivered, Held
from shared.errors import IntegrationNotFound
from shared.failures.models import FailureFilter
from shared.operability.metrics import Counter
from tests.twins.clock import FakeTime
from tests.twins.senders import ScriptedSender, ok, status
from tests.twins.stores import MemoryStores
from tests.unit.control.build import REFRESH_S, actor, controlled
from tests.unit.on_twins import make_config

END = FakeTime().now().replace(year=2100)


@pytest.fixture
async def orders(stores: MemoryStores) -> None:
    await stores.integrations.put(make_config("orders"))


async def test_messages_arriving_while_paused_are_held_not_attempted_nor_counted(stores, fake_time, orders):
    # Given a paused integration
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.control.pause("orders", PauseRequest(reason="receiver upgrade"), actor=actor("ops"))

    # When messages arrive and the engine drains inbound
    await c.arrive("1", "2", "3")
    outcomes = await c.run_inbound()

    # Then nothing was attempted, delayed or failed, and all three wait in the hold
    assert outcomes == [Held(), Held(), Held()]
    assert c.sender.sent == []
    assert [failure async for failure in stores.failures.select("orders", FailureFilter(), not_after=END)] == []
    window = c.metrics.snapshot().integrations["orders"].since_start
    assert (window.get("held"), window.get("delay_actions", 0), window.get("delivered", 0)) == (3, 0, 0)
    assert (await c.control.status("orders")).held == 3


async def test_resume_delivers_every_held_message_in_arrival_order(stores, fake_time, orders):
    # Given 20 messages held while paused (processed by the engine in a shuffled order)
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.control.pause("orders", PauseRequest(), actor=actor("ops"))
    bodies = [str(n) for n in range(20)]
    await c.arrive(*bodies)
    messages = stores.inbound.drain()
    for message in reversed(messages):
        await c.engine.process_message(message.body, queue_message_id=message.id)

    # When the integration is resumed and its drain runs
    status_after = await c.control.resume("orders", actor=actor("ops"))
    await c.run_drains()

    # Then every message reached the receiver once, in the order it arrived, and the hold is empty
    assert status_after.paused is None and status_after.state == "draining"
    assert c.delivered_bodies() == bodies
    final = await c.control.status("orders")
    assert (final.held, final.state, final.holding) == (0, "running", False)


async def test_pause_answers_only_after_every_instance_reads_the_state_again(stores, fake_time, orders):
    # Given an instance that read the state just before the pause
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.gate.state("orders")

    # When another instance pauses the integration
    other = controlled(stores, fake_time, ScriptedSender([ok()]))
    before = fake_time.monotonic()
    status_now = await other.control.pause("orders", PauseRequest(reason="x"), actor=actor("ops"))

    # Then the answer came after the refresh time, and the first instance now holds what arrives
    assert fake_time.monotonic() - before >= REFRESH_S
    assert status_now.paused is not None and status_now.paused.by == "ops" and status_now.paused.reason == "x"
    await c.arrive("late")
    assert await c.run_inbound() == [Held()]


async def test_a_message_failing_transiently_after_the_pause_is_held_not_retried(stores, fake_time, orders):
    # Given a receiver that fails the message, and an operator who pauses while that attempt is under way
    c = controlled(stores, fake_time, ScriptedSender([status(503)]))

    async def send_then_pause(delivery: Delivery) -> Response:
        await c.control.pause("orders", PauseRequest(reason="receiver down"), actor=actor("ops"))
        return status(503)

    c.sender.send_hook = send_then_pause
    await c.arrive("in flight")

    # When the engine finishes that delivery
    [outcome] = await c.run_inbound()

    # Then it was attempted once and then held (with the attempt counted on it), not requeued or failed
    assert outcome == Held()
    assert stores.inbound.peek() == []
    assert '"attempts":1' in stores.held.texts("orders")[0]


async def test_messages_arriving_during_the_drain_queue_behind_the_held_ones(stores, fake_time, orders):
    # Given three held messages, and a resume whose drain has not run yet
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.control.pause("orders", PauseRequest(), actor=actor("ops"))
    await c.arrive("1", "2", "3")
    await c.run_inbound()
    await c.control.resume("orders", actor=actor("ops"))

    # When a new message arrives before the drain
    await c.arrive("4")
    assert await c.run_inbound() == [Held()]
    await c.run_drains()

    # Then it went out after the three, and new arrivals then go straight through
    assert c.delivered_bodies() == ["1", "2", "3", "4"]
    fake_time.advance(REFRESH_S)
    await c.arrive("5")
    assert [type(o) for o in await c.run_inbound()] == [Delivered]


async def test_a_message_held_by_an_instance_that_had_not_seen_the_drain_end_is_delivered(stores, fake_time, orders):
    # Given a drained hold, and an instance whose cache still says "holding"
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    stale = controlled(stores, fake_time, c.sender)
    await c.control.pause("orders", PauseRequest(), actor=actor("ops"))
    await c.arrive("1")
    await c.run_inbound()
    await stale.gate.refresh("orders")
    await c.control.resume("orders", actor=actor("ops"))
    await stale.gate.refresh("orders")
    for message in stores.drain_requests.drain():
        await c.drainer.run(message.body)

    # When that instance holds a new message
    await c.arrive("2")
    [message] = stores.inbound.drain()
    assert await stale.engine.process_message(message.body, queue_message_id=message.id) == Held()

    # Then the drain's last pass, a refresh later, delivers it
    await c.run_drains()
    assert c.delivered_bodies() == ["1", "2"]
    assert await stores.held.count("orders", limit=10) == 0


async def test_a_second_pause_replaces_the_first_and_resume_of_a_running_integration_is_harmless(
    stores, fake_time, orders
):
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.control.pause("orders", PauseRequest(reason="first"), actor=actor("a"))
    second = await c.control.pause("orders", PauseRequest(reason="second"), actor=actor("b"))
    assert second.paused is not None and (second.paused.by, second.paused.reason) == ("b", "second")

    await c.control.resume("orders", actor=actor("a"))
    await c.run_drains()
    again = await c.control.resume("orders", actor=actor("a"))
    assert (again.paused, again.state, again.held) == (None, "running", 0)


async def test_pause_of_an_unknown_integration_is_not_found(stores, fake_time):
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    with pytest.raises(IntegrationNotFound):
        await c.control.pause("nope", PauseRequest(), actor=actor("ops"))


async def test_the_drain_stops_when_the_integration_is_paused_again(stores, fake_time, orders):
    # Given five held messages and a resume
    c = controlled(stores, fake_time, ScriptedSender([ok()]))
    await c.control.pause("orders", PauseRequest(), actor=actor("ops"))
    await c.arrive("1", "2", "3", "4", "5")
    await c.run_inbound()
    await c.control.resume("orders", actor=actor("ops"))

    # When someone pauses again before the drain runs
    await c.control.pause("orders", PauseRequest(reason="again"), actor=actor("ops"))
    await c.run_drains()

    # Then nothing went out and all five still wait, in order
    assert c.sender.sent == []
    assert [t.split('"body_text":"')[1][0] for t in stores.held.texts("orders")] == ["1", "2", "3", "4", "5"]
    assert c.metrics.snapshot().integrations["orders"].since_start.get(Counter.RELEASED.value, 0) == 0


def test_the_breaker_pauses_under_its_own_name():
    assert BREAKER_ACTOR == "circuit-breaker"
