"""INBOUND_SHARDS = 4 end to end: devhost runs one queue trigger per shard, ingest spreads integrations over
them, a retry goes to its integration's shard, and everything is delivered.

By the pinned routing (tests/unit/test_inbound_shards.py): `returns` → `inbound`, `orders` → `inbound-1`,
`prices` → `inbound-2`, `shipments` → `inbound-3`, and `legacy` → `inbound-1`.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.messages.models import Envelope
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.support.receiver import Answer, Receiver

SHARDS = 4
#: Each integration and the trigger of its shard.
TRIGGER_OF = {
    "returns": "deliver_inbound",
    "orders": "deliver_inbound_1",
    "prices": "deliver_inbound_2",
    "shipments": "deliver_inbound_3",
}
PER_INTEGRATION = 10
#: Written by "an upstream system" straight to `inbound`; its receiver fails its first engine run.
UPSTREAM = "legacy"

_EXECUTED = re.compile(r"Executed function=(deliver_inbound\w*) trigger=queueTrigger .* outcome=Succeeded")


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), INBOUND_SHARDS=str(SHARDS))


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[DevhostProcess]:
    with running_app(env) as host:
        yield host


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[Receiver, Receiver]]:
    healthy = Receiver()
    # Two endpoint attempts per engine run (FAST_SETTINGS): the first run fails, the requeued copy succeeds.
    flaky = Receiver([Answer(503), Answer(503), Answer(200)])
    await healthy.start()
    await flaky.start()
    yield healthy, flaky
    await healthy.stop()
    await flaky.stop()


async def configure(host: DevhostProcess, name: str, url: str, **config: object) -> None:
    async with client(host) as http:
        body = {"name": name, "endpoint": {"kind": "http", "url": url, "timeout_s": 5}, **config}
        response = await http.put(f"/integrations/{name}", json=body)
        assert response.status_code in (200, 201), response.text


async def settled(services: Services, healthy: Receiver, flaky: Receiver, timeout_s: float = 60) -> dict[str, int]:
    """Shard depths once every message reached its receiver and nothing waits on any shard."""
    deadline = time.monotonic() + timeout_s
    while True:
        depths = await services.inbound.depths()
        delivered = len(healthy.requests) >= PER_INTEGRATION * len(TRIGGER_OF) and len(flaky.requests) >= 3
        if delivered and not any(depths.values()):
            return depths
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled: {len(healthy.requests)}+{len(flaky.requests)} requests, {depths}")
        await asyncio.sleep(0.2)


async def test_four_shards_deliver_everything_each_shard_used_and_a_retry_requeued_to_its_shard(
    host, services, receivers
):
    healthy, flaky = receivers
    # Given four integrations, one per shard, and one whose receiver fails its first engine run
    for name in TRIGGER_OF:
        await configure(host, name, f"http://127.0.0.1:{healthy.port}/{name}")
    await configure(host, UPSTREAM, flaky.url, retry={"mode": "linear", "linear_count": 3})

    # When each integration sends ten messages over the senders' route and DESIGN.md's route, at once,
    async with client(host) as http:
        routes = [
            f"/ingest/{name}" if n % 2 else f"/integrations/{name}/messages"
            for name in TRIGGER_OF
            for n in range(PER_INTEGRATION)
        ]
        answers = await asyncio.gather(*(http.post(route, content=b"{}") for route in routes))
    assert {answer.status_code for answer in answers} == {202}
    sent = collections.defaultdict(set)
    for route, answer in zip(routes, answers, strict=True):
        sent[route.split("/")[2]].add(answer.json()["id"])
    # and an upstream system writes a message of `legacy` straight to `inbound`, as it always may
    upstream = Envelope(integration=UPSTREAM, body_text='{"from": "upstream"}')
    await services.stores.inbound.send(upstream.model_dump_json())

    # Then everything is delivered and no shard holds anything
    depths = await settled(services, healthy, flaky)
    assert len(depths) == SHARDS
    got = collections.defaultdict(set)
    for request in healthy.requests:
        got[request.path.strip("/")].add(request.headers["idempotency-key"])
    assert got == sent
    assert [r.headers["idempotency-key"] for r in flaky.requests] == [upstream.id] * 3

    # And each shard's trigger ran: its integration's ten messages on each, plus on `inbound` the
    # upstream message's first run, and on `inbound-1` (legacy's shard) the retry it was requeued as
    executed = collections.Counter(_EXECUTED.findall(host.log_tail(100_000)))
    expected = collections.Counter({trigger: PER_INTEGRATION for trigger in TRIGGER_OF.values()})
    expected.update(["deliver_inbound", "deliver_inbound_1"])
    assert executed == expected
