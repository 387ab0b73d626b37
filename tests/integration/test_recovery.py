"""Catastrophic recovery where Azure itself is the point: real leases, dead storage, a large body beside the flow.

What the sweep and the parker do is asserted on the twins (tests/unit/recovery); what each recovery
store does, by the contract suite (tests/contract/test_recovery_flow.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from devtools.azurite import AzuritePorts, connection_string
from shared.delivery.engine import Parked
from shared.delivery.ingest import IncomingMessage
from shared.errors import StorageUnavailable
from shared.messages.models import Envelope
from shared.recovery.models import ParkedMessage
from shared.services import Services
from shared.settings import Settings
from tests.support.stores import azure_stores
from tests.twins.clock import FakeTime


def dead_storage() -> str:
    """A connection string to ports nobody listens on: every call fails at once."""
    return connection_string(AzuritePorts.free())


@pytest.fixture
def recovery_settings(storage_env: dict[str, str]) -> dict[str, str]:
    return {**storage_env, "RECOVERY_PARK_DELAY_S": "0", "RECOVERY_MAX_REINSERTS": "2", "STORAGE_TIMEOUT_S": "3"}


@pytest.fixture
async def services(recovery_settings: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(recovery_settings))
    yield services
    await services.close()


async def inbound(services: Services) -> list[Envelope]:
    """Everything on `inbound` now (each received once: it stays invisible for a minute)."""
    found: list[Envelope] = []
    azure = azure_stores(services)
    for _ in range(50):
        batch = await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=60)
        if not batch:
            return found
        found += [Envelope.model_validate_json(m.body) for m in batch]
    raise AssertionError(f"inbound never drained: {len(found)} messages received in 50 batches")


async def test_a_large_parked_body_waits_beside_the_flow_and_comes_back_byte_identical(services):
    body = os.urandom(300 * 1024)
    envelope = Envelope(integration="orders", body_b64=__import__("base64").b64encode(body).decode())

    await services.parker.park_envelope(envelope, "ingest: inbound unreachable")
    await services.sweeper.sweep(trigger="manual")

    [back] = await inbound(services)
    assert back.body_ref == envelope.id  # claim-checked into the main payloads
    stored = await services.stores.payloads.get(envelope.id)
    assert stored is not None and stored.data == body


async def test_two_overlapping_sweeps_move_each_message_exactly_once(services, recovery_settings):
    # Given 40 parked messages and a second instance with its own clients
    for number in range(40):
        await services.parker.park_envelope(Envelope(integration="orders", body_text=str(number)), "test")
    other = Services(Settings.from_env(recovery_settings))

    # When both sweep at the same time
    try:
        results = await asyncio.gather(services.sweeper.sweep(trigger="timer"), other.sweeper.sweep(trigger="timer"))
    finally:
        await other.close()

    # Then every message is on inbound once
    ids = [e.body_text for e in await inbound(services)]
    assert sorted(ids, key=lambda text: int(text or "0")) == [str(n) for n in range(40)]
    assert sum(r.reinserted for r in results) == 40


async def test_sweep_does_nothing_while_main_storage_is_unhealthy(recovery_settings, azurite):
    # Given the main account unreachable and the recovery account up with a parked message
    settings = {
        **recovery_settings,
        "AzureWebJobsStorage": dead_storage(),
        "RecoveryStorage": azurite.connection_string,
    }
    services = Services(Settings.from_env(settings))
    azure = azure_stores(services)
    try:
        await services.parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")

        result = await services.sweeper.sweep(trigger="timer")

        assert not result.healthy
        assert "main storage unhealthy" in (result.reason or "")
        assert await azure.recovery_account.queues.depth(azure.names.recovery) == 1
    finally:
        await services.close()


async def test_ingest_parks_when_inbound_is_unreachable_and_fails_only_when_both_are(recovery_settings, azurite):
    async def ingest(services: Services):
        return await services.ingest.accept(
            IncomingMessage("orders", b"{}", "application/json", {}), now=FakeTime().now()
        )

    # Main down, recovery up: parked (accepted)
    main_down = Services(
        Settings.from_env(
            {**recovery_settings, "AzureWebJobsStorage": dead_storage(), "RecoveryStorage": azurite.connection_string}
        )
    )
    both_down = Services(
        Settings.from_env(
            {**recovery_settings, "AzureWebJobsStorage": dead_storage(), "RecoveryStorage": dead_storage()}
        )
    )
    try:
        accepted = await ingest(main_down)
        with pytest.raises(StorageUnavailable):
            await ingest(both_down)
    finally:
        await main_down.close()
        await both_down.close()

    # Then the first was accepted as parked (the second was refused above)
    assert accepted.parked
    recovery = Services(Settings.from_env(recovery_settings))
    try:
        [message] = await azure_stores(recovery).account.queues.receive(azure_stores(recovery).names.recovery)
    finally:
        await recovery.close()
    # And what was parked is the envelope ingest built, bound for inbound, saying why
    parked = ParkedMessage.model_validate_json(message.body)
    assert parked.flow == "inbound"
    assert parked.reason.startswith("ingest: "), parked.reason
    envelope = Envelope.model_validate_json(parked.text)
    assert (envelope.id, envelope.integration) == (accepted.envelope.id, "orders")
    # (with the correlation id ingest defaults to the message id, and the body as received)
    assert envelope.correlation_id == accepted.envelope.id
    assert envelope.inline_body() == b"{}"


async def test_engine_parks_the_message_when_it_cannot_record_a_failure(recovery_settings, azurite):
    # Given an engine whose main storage is gone (config, failures, requeue all unreachable)
    settings = {
        **recovery_settings,
        "AzureWebJobsStorage": dead_storage(),
        "RecoveryStorage": azurite.connection_string,
    }
    services = Services(Settings.from_env(settings))
    azure = azure_stores(services)
    try:
        raw = Envelope(integration="orders", body_text="x").model_dump_json().encode()

        outcome = await services.engine.process_message(raw, queue_message_id="q1")

        assert isinstance(outcome, Parked)
        assert await azure.recovery_account.queues.depth(azure.names.recovery) == 1
    finally:
        await services.close()


async def test_lowering_inbound_shards_leaves_nothing_behind_the_sweep_moves_it_to_the_new_layout(recovery_settings):
    # Given an app with four shards that left messages on `inbound-3` and its poison queue
    # (`shipments` is on shard 3 of 4 and on shard 1 of 2)
    before = Services(Settings.from_env({**recovery_settings, "INBOUND_SHARDS": "4"}))
    waiting = Envelope(integration="shipments", body_text='{"n": 1}', recovery_count=1)
    poisoned = Envelope(integration="shipments", body_text='{"n": 2}')
    try:
        await before.inbound.send("shipments", waiting.model_dump_json())
        azure = azure_stores(before)
        await azure.account.queues.send(f"{azure.names.inbound_shard(3)}-poison", poisoned.model_dump_json())
    finally:
        await before.close()

    # When the setting is lowered to two and the sweep runs
    after = Services(Settings.from_env({**recovery_settings, "INBOUND_SHARDS": "2"}))
    try:
        status = await after.sweeper.status()
        result = await after.sweeper.sweep(trigger="manual")

        # Then GET /recovery showed the retired shard and its poison queue while they held messages
        names = azure_stores(after).names
        shown = {(queue.name, queue.kind, queue.count) for queue in status.queues if "inbound-3" in queue.name}
        assert shown == {(names.inbound_shard(3), "retired", 1), (f"{names.inbound_shard(3)}-poison", "poison", 1)}
        # And both went to the shipments shard of the new layout: the waiting one as it was, the
        # poisoned one with a reinsert counted
        assert (result.reinserted, result.errors) == (2, 0)
        queues = azure_stores(after).account.queues
        moved = [Envelope.model_validate_json(m.body) for m in await queues.receive(names.inbound_shard(1))]
        assert sorted((e.id, e.recovery_count) for e in moved) == sorted([(waiting.id, 1), (poisoned.id, 1)])
        # And the sweep created none of the shards that never existed
        assert await queues.list_queues(f"{names.inbound}-2") == []
        # And once they are empty, GET /recovery no longer lists them
        assert [queue.name for queue in (await after.sweeper.status()).queues if "inbound-3" in queue.name] == []
    finally:
        await after.close()
