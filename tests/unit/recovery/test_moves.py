"""Moving one message on the twins when something is off: a job page that cannot be read, a lease lost mid-move.

A sweep must not die on one bad message: each is counted and left where it is (docs/design-notes.md).
"""

from __future__ import annotations

import base64
import json

from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from shared.recovery.parker import Parker
from shared.recovery.ports import MessageSource, RecoveryMessage
from shared.recovery.sweeper import SWEEP_LEASE_S, RecoverySweeper
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import audit_on, envelopes_on, make_jobs


def make_sweeper(stores: MemoryStores, time: FakeTime, *, inbound: MessageQueue | None = None) -> RecoverySweeper:
    return RecoverySweeper(
        flow=stores.recovery,
        poison=stores.poison,
        inbound=InboundShards([inbound] if inbound else stores.inbound_shards),
        job_pages=stores.job_pages,
        payloads=stores.payloads,
        failures=stores.failures,
        jobs=make_jobs(stores, time).runner,
        state=stores.sweep_state,
        main_flow=stores.main_flow,
        max_reinserts=2,
        batch_size=500,
        max_inbound_depth=1000,
        metrics=Metrics(),
        audit=audit_on(stores, time),
        clock=time.now,
    )


async def test_a_poisoned_job_page_that_cannot_be_read_is_one_error_and_the_sweep_goes_on(stores, fake_time):
    # Given two job pages nobody can read in the poison queue, and a parked message behind them
    stores.jobs_poison.put("not json at all")
    stores.jobs_poison.put(json.dumps({"job_id": "no integration"}))
    parker = Parker(stores.recovery, delay_s=0, metrics=Metrics(), clock=fake_time.now)
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")

    # When the sweep runs
    result = await make_sweeper(stores, fake_time).sweep(trigger="timer")

    # Then each bad page is one error and stays where it was; the parked message still went back
    assert (result.errors, result.reinserted, result.gave_up) == (2, 1, 0)
    assert sorted(stores.jobs_poison.texts()) == sorted(["not json at all", '{"job_id": "no integration"}'])
    assert stores.job_pages.peek() == []
    assert [e.body_text for e in envelopes_on(stores)] == ["x"]


class TakenOverWhileSending:
    """`inbound`, but while a message is sent the sweep's lease on it lapses and another sweep receives it."""

    def __init__(self, inner: MessageQueue, source: MessageSource, time: FakeTime) -> None:
        self._inner, self._source, self._time = inner, source, time
        self.name = inner.name
        self.taken: list[RecoveryMessage] = []

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        await self._inner.send(text, delay_s=delay_s)
        self._time.advance(SWEEP_LEASE_S + 1)
        self.taken += await self._source.receive(32, lease_s=SWEEP_LEASE_S)

    async def depth(self) -> int:
        return await self._inner.depth()


async def test_a_message_whose_lease_lapsed_mid_move_is_left_to_its_new_holder_with_its_body(stores, fake_time):
    # Given a parked message whose body waits beside the flow
    body = b"\x01" * (100 * 1024)
    envelope = Envelope(integration="orders", body_b64=base64.b64encode(body).decode())
    await Parker(stores.recovery, delay_s=0, metrics=Metrics(), clock=fake_time.now).park_envelope(envelope, "test")
    inbound = TakenOverWhileSending(stores.inbound, stores.recovery, fake_time)

    # When the sweep moves it, but its lease lapses and another sweep takes the message meanwhile
    result = await make_sweeper(stores, fake_time, inbound=inbound).sweep(trigger="timer")

    # Then the move is counted as an error, not as done: the message is still on the flow, the other's
    [other] = inbound.taken
    assert (result.errors, result.reinserted, result.by_queue) == (1, 0, {})
    assert (await stores.recovery.status()).count == 1
    # And its body is still there for the other sweep, whose delete takes the message off
    assert await stores.recovery.take_body(envelope.id) == body
    await stores.recovery.delete(other)
    assert (await stores.recovery.status()).count == 0
    # (the copy sent meanwhile is on inbound: a duplicate at worst, never a loss)
    assert [e.id for e in envelopes_on(stores)] == [envelope.id]
