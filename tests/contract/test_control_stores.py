"""ControlStates, HeldMessages and RateSlots contract: conditional state writes, the hold in arrival order,
and token slots no two claims overfill."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shared.control.decisions import arrival_position
from shared.control.models import BreakerPhase, BreakerState, ControlState, PauseInfo
from shared.errors import ConcurrencyConflict
from shared.messages.models import Envelope
from tests.contract.backends import Backend

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_control_state_is_created_once_and_read_back_with_its_version(backend: Backend):
    states = backend.stores.control_states
    state = ControlState(
        paused=PauseInfo(at=BASE, by="ops", reason="upgrade"),
        holding=True,
        breaker=BreakerState(phase=BreakerPhase.OPEN, opened_at=BASE, failures=3, trips=1),
    )

    assert await states.get("orders") is None
    version = await states.create("orders", state)
    with pytest.raises(ConcurrencyConflict):
        await states.create("orders", ControlState())

    stored = await states.get("orders")
    assert stored is not None and stored.state == state and stored.version == version


async def test_of_two_writers_of_a_control_state_with_the_same_version_only_the_first_wins(backend: Backend):
    states = backend.stores.control_states
    await states.create("orders", ControlState())
    stored = await states.get("orders")
    assert stored is not None

    await states.replace("orders", ControlState(drain_owner="first"), version=stored.version)
    with pytest.raises(ConcurrencyConflict):
        await states.replace("orders", ControlState(drain_owner="second"), version=stored.version)

    after = await states.get("orders")
    assert after is not None and after.state.drain_owner == "first"


async def test_every_control_state_is_listed_with_its_integration(backend: Backend):
    states = backend.stores.control_states
    await states.create("orders", ControlState(holding=True))
    await states.create("invoices.v2", ControlState())

    listed = {integration: stored.state async for integration, stored in states.all()}

    assert listed == {"orders": ControlState(holding=True), "invoices.v2": ControlState()}


def envelope(n: int, *, second: int, body: str = "x") -> Envelope:
    return Envelope(id=f"m-{n}", integration="orders", body_text=body, received_at=BASE.replace(second=second))


async def test_held_messages_come_back_oldest_first_and_per_integration(backend: Backend):
    held = backend.stores.held
    for n, second in ((1, 30), (2, 10), (3, 20)):
        message = envelope(n, second=second)
        await held.hold("orders", arrival_position(message), message.model_dump_json())
    await held.hold("other", arrival_position(envelope(9, second=1)), "{}")

    items = await held.oldest("orders", limit=10)

    assert [Envelope.model_validate_json(item.text).id for item in items] == ["m-2", "m-3", "m-1"]
    assert await held.count("orders", limit=100) == 3
    assert await held.count("orders", limit=2) == 2
    assert len(await held.oldest("orders", limit=2)) == 2


async def test_the_same_message_held_twice_is_held_once(backend: Backend):
    held = backend.stores.held
    message = envelope(1, second=5)
    await held.hold("orders", arrival_position(message), message.model_dump_json())
    await held.hold("orders", arrival_position(message), message.model_copy(update={"attempts": 2}).model_dump_json())

    [item] = await held.oldest("orders", limit=10)

    assert Envelope.model_validate_json(item.text).attempts == 2


async def test_a_held_message_is_released_only_if_unchanged_since_read(backend: Backend):
    held = backend.stores.held
    first, second = envelope(1, second=1), envelope(2, second=2)
    for message in (first, second):
        await held.hold("orders", arrival_position(message), message.model_dump_json())
    [one, two] = await held.oldest("orders", limit=10)

    # the second is held again (a failed probe) after it was read
    await held.hold("orders", two.position, second.model_copy(update={"attempts": 1}).model_dump_json())

    assert await held.release("orders", one) is True
    assert await held.release("orders", one) is False
    assert await held.release("orders", two) is False
    [left] = await held.oldest("orders", limit=10)
    assert left.position == two.position


async def test_a_large_held_message_comes_back_whole(backend: Backend):
    held = backend.stores.held
    body = "é" * 47_000
    message = envelope(1, second=1, body=body)
    await held.hold("orders", arrival_position(message), message.model_dump_json())

    [item] = await held.oldest("orders", limit=1)

    assert Envelope.model_validate_json(item.text).body_text == body


async def test_slot_claims_hand_out_each_token_once_up_to_the_capacity(backend: Backend):
    slots = backend.stores.rate_slots

    assert await slots.claim("orders", 1000, capacity=10, want=4) == (0, 4)
    assert await slots.claim("orders", 1000, capacity=10, want=4) == (4, 4)
    assert await slots.claim("orders", 1000, capacity=10, want=4) == (8, 2)
    assert (await slots.claim("orders", 1000, capacity=10, want=4))[1] == 0
    assert await slots.claim("orders", 1001, capacity=10, want=4) == (0, 4)
    assert await slots.claim("other", 1000, capacity=10, want=4) == (0, 4)


async def test_concurrent_slot_claims_never_overfill_a_slot(backend: Backend):
    slots = backend.stores.rate_slots

    results = await asyncio.gather(*(slots.claim("orders", 2000, capacity=12, want=3) for _ in range(8)))

    taken = [(first, count) for first, count in results if count]
    assert sum(count for _, count in taken) == 12
    tokens = sorted(index for first, count in taken for index in range(first, first + count))
    assert tokens == list(range(12))
