"""Inbound shards contract: with INBOUND_SHARDS = 4 the bundle has four engine queues and four poison queues,
and `InboundShards` puts each integration's messages on the queue of its shard, on the twins and on Azurite.

By the pinned routing (tests/unit/test_inbound_shards.py): `returns` → shard 0, `orders` → 1, `prices` → 2,
`shipments` → 3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.messages.shards import InboundShards
from tests.contract.backends import Backend, azure_backend, memory_backend
from tests.contract.conftest import BACKENDS
from tests.twins.clock import FakeTime

SHARDS = 4


@pytest.fixture(params=BACKENDS)
async def sharded(request: pytest.FixtureRequest, clock: FakeTime) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield memory_backend(clock, inbound_shards=SHARDS)
        return
    environ = {**request.getfixturevalue("storage_env"), "INBOUND_SHARDS": str(SHARDS)}
    async with azure_backend(environ) as backend:
        yield backend


def names_after_prefix(names: list[str]) -> list[str]:
    return [name[name.index("inbound") :] for name in names]


async def test_the_bundle_has_inbound_first_then_one_queue_and_one_poison_queue_per_further_shard(sharded):
    stores = sharded.stores

    shards = list(stores.inbound_shards)

    assert names_after_prefix([queue.name for queue in shards]) == ["inbound", "inbound-1", "inbound-2", "inbound-3"]
    assert shards[0].name == stores.inbound.name
    poison = [source.name for source in stores.poison if source.flow == "inbound"]
    assert names_after_prefix(poison) == ["inbound-poison", "inbound-1-poison", "inbound-2-poison", "inbound-3-poison"]


async def test_each_integrations_messages_wait_on_its_shards_queue(sharded):
    # Given the engine's queues as the services route over them
    inbound = InboundShards(sharded.stores.inbound_shards)

    # When three integrations send, `orders` twice and one of them delayed
    await inbound.send("orders", '{"integration": "orders", "body_text": "1"}')
    await inbound.send("orders", '{"integration": "orders", "body_text": "2"}', delay_s=30)
    await inbound.send("shipments", '{"integration": "shipments", "body_text": "3"}')
    await inbound.send("returns", '{"integration": "returns", "body_text": "4"}')

    # Then each waits on its own shard's queue, the delayed one counted too
    depths = await inbound.depths()
    assert list(depths.values()) == [1, 2, 0, 1]
    assert names_after_prefix(list(depths)) == ["inbound", "inbound-1", "inbound-2", "inbound-3"]
    assert await inbound.depth_of("orders") == await inbound.deepest() == 2


async def test_with_no_shard_beyond_the_setting_nothing_is_retired(sharded):
    assert list(await sharded.stores.retired_shards()) == []
