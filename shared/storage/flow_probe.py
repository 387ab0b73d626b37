"""Whether the main flow can take messages back: a queue write goes through and the failures table answers."""

from __future__ import annotations

from shared.storage.failure_table import TableFailureStore
from shared.storage.queues import QueueGateway


class StorageFlowProbe:
    def __init__(self, queues: QueueGateway, probe_queue: str, failures: TableFailureStore) -> None:
        self._queues = queues
        # Never `inbound`: the engine would read the probe.
        self._probe_queue = probe_queue
        self._failures = failures

    async def check(self) -> None:
        await self._queues.probe_writable(self._probe_queue)
        await self._failures.ping()
