"""RecoveryFlow and poison-queue contract: send, receive under a lease, delete, status, bodies beside the flow.

The recovery flow runs on three implementations: the twin, the Storage flow on Azurite, and the
Service Bus flow over the fake Service Bus client (tests/twins/service_bus.py; no emulator exists).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.errors import ConcurrencyConflict
from shared.recovery.models import Flow
from shared.recovery.ports import MessageSource, RecoveryFlow
from tests.contract.backends import Backend, azure_backend
from tests.twins.clock import FakeTime
from tests.twins.recovery import MemoryRecoveryFlow
from tests.twins.service_bus import FakeServiceBusClient

FLOWS = ["memory", pytest.param("azurite", marks=pytest.mark.integration), "servicebus-fake"]


@pytest.fixture(params=FLOWS)
async def recovery_flow(request: pytest.FixtureRequest, clock: FakeTime) -> AsyncIterator[RecoveryFlow]:
    if request.param == "memory":
        yield MemoryRecoveryFlow(clock.now)
    elif request.param == "servicebus-fake":
        from shared.storage.recovery_service_bus import ServiceBusRecoveryFlow

        flow = ServiceBusRecoveryFlow(FakeServiceBusClient(), "recovery", timeout_s=5, clock=clock.now)
        yield flow
        await flow.close()
    else:
        async with azure_backend(request.getfixturevalue("storage_env")) as backend:
            yield backend.stores.recovery


async def test_a_sent_message_is_received_once_while_leased_and_gone_once_deleted(recovery_flow: RecoveryFlow):
    # Given two parked messages
    await recovery_flow.send('{"n": 1}', delay_s=0)
    await recovery_flow.send('{"n": 2}', delay_s=0)

    # When they are received under a lease, and received again while the lease holds
    first = await recovery_flow.receive(10, lease_s=60)
    while_leased = await recovery_flow.receive(10, lease_s=60)

    # Then each was received once, with when it was enqueued
    assert sorted(m.text for m in first) == ['{"n": 1}', '{"n": 2}']
    assert all(m.enqueued_at is not None for m in first)
    assert while_leased == []
    # And deleting them empties the flow
    for message in first:
        await recovery_flow.delete(message)
    assert (await recovery_flow.status()).count == 0


async def test_deleting_a_message_twice_is_harmless(recovery_flow: RecoveryFlow):
    await recovery_flow.send("once", delay_s=0)
    [message] = await recovery_flow.receive(10, lease_s=60)

    await recovery_flow.delete(message)
    await recovery_flow.delete(message)

    assert (await recovery_flow.status()).count == 0


async def test_a_delayed_message_waits_but_is_counted(recovery_flow: RecoveryFlow):
    await recovery_flow.send('{"n": 1}', delay_s=300)

    assert await recovery_flow.receive(10, lease_s=60) == []
    assert (await recovery_flow.status()).count == 1


async def test_status_names_the_flow_and_counts_what_waits(recovery_flow: RecoveryFlow):
    await recovery_flow.send("a", delay_s=0)
    await recovery_flow.send("b", delay_s=0)

    status = await recovery_flow.status()

    assert (status.name, status.kind, status.count) == (recovery_flow.name, "recovery", 2)
    assert status.oldest_age_s is not None and status.oldest_age_s >= 0
    assert recovery_flow.kind == "recovery" and recovery_flow.max_text_bytes > 0


async def test_receive_takes_at_most_the_number_asked_for(recovery_flow: RecoveryFlow):
    for number in range(5):
        await recovery_flow.send(str(number), delay_s=0)

    taken = await recovery_flow.receive(3, lease_s=60)

    assert len(taken) == 3


async def test_probe_answers(recovery_flow: RecoveryFlow):
    await recovery_flow.probe()


async def test_a_body_is_kept_beside_the_flow_when_the_backend_can(recovery_flow: RecoveryFlow):
    # When a large body is put beside the flow
    kept = await recovery_flow.put_body("m-1", b"\x00" * 70_000, "application/octet-stream")

    # Then a Storage flow keeps it until dropped; Service Bus has nowhere to keep it and says so
    if recovery_flow.backend == "storage":
        assert kept is True
        assert await recovery_flow.take_body("m-1") == b"\x00" * 70_000
        await recovery_flow.drop_body("m-1")
    else:
        assert kept is False
    assert await recovery_flow.take_body("m-1") is None
    assert await recovery_flow.take_body("never-put") is None


async def test_a_delete_after_the_lease_lapsed_and_another_took_the_message_is_a_conflict_and_leaves_it_to_them(
    backend: Backend,
):
    # Given a message received under a one-second lease, which lapses, and is then received again
    flow = backend.stores.recovery
    await flow.send("contested", delay_s=0)
    [first] = await flow.receive(1, lease_s=1)
    await backend.elapse(1.5)
    [second] = await flow.receive(1, lease_s=60)

    # When the first receiver, late, deletes it with its old handle, then that is a conflict
    with pytest.raises(ConcurrencyConflict):
        await flow.delete(first)

    # Then it is still there for the second, whose delete removes it
    assert (await flow.status()).count == 1
    await flow.delete(second)
    assert (await flow.status()).count == 0


# --- the host's poison queues, drained by the same sweep -------------------------------------------


def poison_source(backend: Backend, flow: Flow) -> MessageSource:
    [source] = [source for source in backend.stores.poison if source.flow == flow]
    return source


@pytest.mark.parametrize("flow", ["inbound", "jobs"])
async def test_a_poison_queue_is_a_source_of_its_flow(backend: Backend, flow: Flow):
    # Given a message the host moved to the flow's poison queue
    source = poison_source(backend, flow)
    await backend.poison(flow, '{"junk": true}')

    # When the sweep reads it
    status = await source.status()
    [message] = await source.receive(10, lease_s=60)
    await source.delete(message)

    # Then it was there, the source says which flow it belongs to, and deleting it empties the queue
    assert (source.kind, status.kind, status.count) == ("poison", "poison", 1)
    assert message.text == '{"junk": true}'
    assert (await source.status()).count == 0
    assert {s.flow for s in backend.stores.poison} == {"inbound", "jobs"}
