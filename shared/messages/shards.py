"""`inbound` and its shards: which queue each integration's messages go to (INBOUND_SHARDS, docs/scaling.md).

With INBOUND_SHARDS = N the engine reads N queues: `inbound` (shard 0, the upstream contract:
upstream systems may always write there) and `inbound-1` … `inbound-<N-1>`. Everything Rebound
itself enqueues for an integration (ingest, engine requeues, job resends, recovery reinserts,
pickup) goes to that integration's shard, chosen by a stable hash of its id, so an integration's
traffic always lands on one queue whichever instance or process sends it. A message read from any
shard (say an upstream wrote it to `inbound`) is processed where it is; only its requeues move to
its integration's shard.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from shared.messages.ports import MessageQueue

#: INBOUND_SHARDS is 1 to this. One Storage queue serves ~2,000 msg/s and an account ~20,000: past
#: ten shards the account, not the queues, is the limit, and 16 leaves headroom for uneven spread.
MAX_INBOUND_SHARDS = 16
#: The queue name `inbound` and its shards are built from (`<prefix>inbound`, `<prefix>inbound-1`, …).
INBOUND_QUEUE = "inbound"


def shard_suffix(shard: int) -> str:
    """What follows `inbound` in a shard's queue name: nothing for shard 0, `-<n>` for the others."""
    if not 0 <= shard < MAX_INBOUND_SHARDS:
        raise ValueError(f"shard {shard} is outside 0..{MAX_INBOUND_SHARDS - 1}")
    return f"-{shard}" if shard else ""


def shard_index(integration: str, shards: int) -> int:
    """The shard of an integration: the same in every process and release (Python's `hash()` is salted
    per process, so it would scatter one integration over every shard)."""
    if not 1 <= shards <= MAX_INBOUND_SHARDS:
        raise ValueError(f"shards must be 1..{MAX_INBOUND_SHARDS}, not {shards}")
    if shards == 1:
        return 0
    digest = hashlib.blake2b(integration.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


class InboundShards:
    """The engine's queues, shard 0 (`inbound`) first; the one place requeues and ingest pick a queue."""

    def __init__(self, queues: Sequence[MessageQueue]) -> None:
        if not 1 <= len(queues) <= MAX_INBOUND_SHARDS:
            raise ValueError(f"need 1..{MAX_INBOUND_SHARDS} inbound queues, not {len(queues)}")
        self._queues = tuple(queues)

    @property
    def queues(self) -> tuple[MessageQueue, ...]:
        return self._queues

    def shard_of(self, integration: str) -> int:
        return shard_index(integration, len(self._queues))

    def queue_for(self, integration: str) -> MessageQueue:
        return self._queues[self.shard_of(integration)]

    async def send(self, integration: str, text: str, *, delay_s: int | None = None) -> None:
        """Enqueue one of `integration`'s messages on its shard."""
        await self.queue_for(integration).send(text, delay_s=delay_s)

    async def depth_of(self, integration: str) -> int:
        """Messages waiting on `integration`'s shard (what a bulk producer for it checks, backpressure)."""
        return await self.queue_for(integration).depth()

    async def depths(self) -> dict[str, int]:
        """Messages waiting per shard, by queue name, shard 0 first."""
        counts = await asyncio.gather(*(queue.depth() for queue in self._queues))
        return {queue.name: count for queue, count in zip(self._queues, counts, strict=True)}

    async def deepest(self) -> int:
        """The most messages waiting on any one shard (backpressure for producers of many integrations)."""
        return max((await self.depths()).values())
