"""PickupStates and SeenItems contract: conditional writes that make the lease, and the dedup window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConcurrencyConflict
from shared.pickup.models import PickupOutcome, PickupState
from tests.contract.backends import Backend

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_state_is_created_once_and_read_back_with_its_version(backend: Backend):
    states = backend.stores.pickups
    state = PickupState(last_outcome=PickupOutcome.OK, picked_total=3, next_run_at=BASE, lease_owner="a")

    assert await states.get("orders") is None
    version = await states.create("orders", state)
    with pytest.raises(ConcurrencyConflict):
        await states.create("orders", PickupState())

    stored = await states.get("orders")
    assert stored is not None and stored.state == state and stored.version == version


async def test_of_two_writers_holding_the_same_version_only_the_first_wins(backend: Backend):
    states = backend.stores.pickups
    await states.create("orders", PickupState())
    stored = await states.get("orders")
    assert stored is not None

    await states.replace("orders", PickupState(lease_owner="first"), version=stored.version)
    with pytest.raises(ConcurrencyConflict):
        await states.replace("orders", PickupState(lease_owner="second"), version=stored.version)

    after = await states.get("orders")
    assert after is not None and after.state.lease_owner == "first"


async def test_replacing_a_state_that_does_not_exist_is_a_conflict(backend: Backend):
    states = backend.stores.pickups
    await states.create("other", PickupState())
    stored = await states.get("other")
    assert stored is not None

    with pytest.raises(ConcurrencyConflict):
        await states.replace("orders", PickupState(), version=stored.version)


async def test_a_seen_item_is_found_by_its_key_per_integration_and_forgotten_past_the_cutoff(backend: Backend):
    seen = backend.stores.pickup_seen
    key = 'in/order 1.xml\n"0x8DC"\nwith / # ? and ünïcode'
    await seen.remember("orders", key, message_id="pickup-1", at=BASE)
    await seen.remember("orders", "recent", message_id="pickup-2", at=BASE + timedelta(days=3))

    assert await seen.picked_at("orders", key) == BASE
    assert await seen.picked_at("other", key) is None
    assert await seen.picked_at("orders", "never") is None

    assert await seen.forget_before("orders", BASE + timedelta(days=1), limit=100) == 1
    assert await seen.picked_at("orders", key) is None
    assert await seen.picked_at("orders", "recent") == BASE + timedelta(days=3)
