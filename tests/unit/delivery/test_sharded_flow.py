"""With INBOUND_SHARDS = 4, every way a message reaches the engine's queues goes to its integration's shard.

On the twins (four shard queues). By the pinned routing (tests/unit/test_inbound_shards.py):
`returns` → `inbound`, `orders` → `inbound-1`, `prices` → `inbound-2`, `shipments` → `inbound-3`.
"""

from __future__ import annotations

import pytest

from shared.delivery.engine import RetryScheduled
from shared.delivery.ingest import IncomingMessage
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.jobs.runner import BACKPRESSURE_DELAY_S
from shared.messages.models import Envelope
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.recovery import MemorySource
from tests.twins.senders import ScriptedSender, status
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_config, make_engine, make_jobs, run_job_pages, seed_failures, services_on
from tests.unit.recovery.test_sweep import make_sweeper

#: Each integration's shard with four shards.
SHARD_OF = {"returns": 0, "orders": 1, "prices": 2, "shipments": 3}


@pytest.fixture
def stores(fake_time: FakeTime) -> MemoryStores:
    return MemoryStores(fake_time.now, inbound_shards=4)


def on_shards(stores: MemoryStores) -> dict[str, list[Envelope]]:
    """Every message waiting, per shard queue (delayed ones included), taken off the queues."""
    return {
        queue.name: [Envelope.model_validate_json(m.text) for m in queue.drain(include_delayed=True)]
        for queue in stores.inbound_shards
    }


def integrations_on(stores: MemoryStores) -> dict[str, list[str]]:
    return {name: sorted(e.integration for e in envelopes) for name, envelopes in on_shards(stores).items()}


async def test_ingest_puts_each_integrations_messages_on_its_own_shard(stores, fake_time):
    # Given four integrations, one per shard
    for integration in SHARD_OF:
        await stores.integrations.put(make_config(integration))
    services = services_on(stores, INBOUND_SHARDS="4")

    # When each sends two messages
    for integration in [*SHARD_OF, *SHARD_OF]:
        await services.ingest.accept(IncomingMessage(integration, b"{}", "application/json", {}), now=fake_time.now())

    # Then each shard holds exactly its integration's two
    assert integrations_on(stores) == {
        "inbound": ["returns", "returns"],
        "inbound-1": ["orders", "orders"],
        "inbound-2": ["prices", "prices"],
        "inbound-3": ["shipments", "shipments"],
    }


async def test_an_engine_retry_of_a_message_upstream_wrote_to_inbound_goes_to_its_integrations_shard(stores, fake_time):
    # Given an upstream system wrote an `orders` message to `inbound` (the contract), and the receiver is down
    await stores.integrations.put(make_config("orders", retry={"mode": "linear", "linear_count": 3}))
    await stores.inbound.send(Envelope(integration="orders", body_text="{}").model_dump_json())
    [message] = stores.inbound.drain()

    # When the engine processes it where it is, and the delivery fails transiently
    engine = make_engine(stores, fake_time, ScriptedSender([status(503)]))
    outcome = await engine.process_message(message.body, queue_message_id=message.id)

    # Then the copy for the next attempt waits on the integration's shard, not on `inbound`
    assert isinstance(outcome, RetryScheduled)
    shards = on_shards(stores)
    assert [e.engine_attempts for e in shards["inbound-1"]] == [1]
    assert shards["inbound"] == shards["inbound-2"] == shards["inbound-3"] == []


async def test_a_retry_job_resends_to_the_integrations_shard(stores, fake_time):
    # Given three failures of `prices`
    failures = await seed_failures(stores, fake_time, 3, integration="prices")
    jobs, runner = make_jobs(stores, fake_time)

    # When a retry-all job runs
    job = await jobs.start("prices", _retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then every message is back on the shard of `prices`
    shards = on_shards(stores)
    assert sorted(e.id for e in shards["inbound-2"]) == sorted(f.message_id for f in failures)
    assert sum(len(envelopes) for envelopes in shards.values()) == 3
    assert (await jobs.get("prices", job.id, now=fake_time.now())).state is JobState.COMPLETED


async def test_a_retry_job_waits_only_for_its_own_shard_to_drain(stores, fake_time):
    # Given failures of `prices` (inbound-2), a limit of 2, and `orders`' shard (inbound-1) deeper than that
    await seed_failures(stores, fake_time, 2, integration="prices")
    for _ in range(5):
        await stores.inbound_shards[1].send("{}")
    jobs, runner = make_jobs(stores, fake_time, depth=2)
    await jobs.start("prices", _retry_all(), actor=TESTER, now=fake_time.now())

    # When its page runs, it resends: another integration's backlog does not hold it up
    assert await run_job_pages(runner, stores, fake_time) == 1
    assert len(stores.inbound_shards[2].peek()) == 2

    # But once its own shard is over the limit, the next retry job of `prices` waits
    await seed_failures(stores, fake_time, 2, integration="prices")
    await stores.inbound_shards[2].send("{}")
    await jobs.start("prices", _retry_all(), actor=TESTER, now=fake_time.now())
    [page] = stores.job_pages.drain()
    assert await runner.run_page(page.body, message_id=page.id, now=fake_time.now()) is None
    assert stores.job_pages.delays[-1] == BACKPRESSURE_DELAY_S


async def test_the_sweep_reads_every_shards_poison_queue_and_reinserts_on_the_integrations_shard(stores, fake_time):
    # Given poisoned messages on shard 3's and shard 1's poison queues; `returns` belongs on `inbound`
    shipments = Envelope(integration="shipments", body_text="{}")
    returns = Envelope(integration="returns", body_text="{}")
    poison = {source.name: source for source in stores.poison}
    poison["inbound-3-poison"].put(shipments.model_dump_json())
    poison["inbound-1-poison"].put(returns.model_dump_json())

    # When the sweep runs
    result = await make_sweeper(stores, fake_time, make_jobs(stores, fake_time).runner).sweep(trigger="timer")

    # Then both are moved, each to its integration's shard, with recovery_count+1
    assert result.by_queue == {"inbound-1-poison": 1, "inbound-3-poison": 1}
    shards = on_shards(stores)
    assert [(e.id, e.recovery_count) for e in shards["inbound-3"]] == [(shipments.id, 1)]
    assert [(e.id, e.recovery_count) for e in shards["inbound"]] == [(returns.id, 1)]


async def test_the_sweep_pauses_while_any_shard_is_over_the_limit(stores, fake_time):
    # Given a parked message and one shard deeper than the limit
    stores.inbound_poison.put(Envelope(integration="returns", body_text="{}").model_dump_json())
    for _ in range(3):
        await stores.inbound_shards[3].send("{}")

    # When the sweep runs
    sweeper = make_sweeper(stores, fake_time, make_jobs(stores, fake_time).runner, depth=2)
    result = await sweeper.sweep(trigger="timer")

    # Then it moves nothing and says why
    assert result.reinserted == 0
    assert result.reason is not None and "backpressure" in result.reason


def _retry_all() -> JobRequest:
    return JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))


async def test_messages_left_on_a_shard_beyond_the_setting_are_moved_to_their_shard_without_counting_a_reinsert(
    stores, fake_time
):
    # Given INBOUND_SHARDS was lowered and `inbound-5` still holds a message of `prices`
    retired = MemorySource("inbound-5", "retired", "inbound", fake_time.now)
    stores.retired.append(retired)
    left = Envelope(integration="prices", body_text="{}")
    retired.put(left.model_dump_json())
    sweeper = services_on(stores, INBOUND_SHARDS="4").sweeper

    # When GET /recovery is read and the sweep runs
    shown = [(queue.name, queue.kind, queue.count) for queue in (await sweeper.status()).queues]
    result = await sweeper.sweep(trigger="timer")

    # Then the retired shard was shown while it held the message, which is now on the shard of `prices`,
    # its recovery count unchanged (it failed nothing), and the empty retired shard is no longer shown
    assert ("inbound-5", "retired", 1) in shown
    assert result.by_queue == {"inbound-5": 1}
    assert [(e.id, e.recovery_count) for e in on_shards(stores)["inbound-2"]] == [(left.id, 0)]
    assert "inbound-5" not in [queue.name for queue in (await sweeper.status()).queues]
