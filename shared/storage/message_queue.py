"""One Storage queue of the main flow (`inbound`, `jobs`) as the domain sees it."""

from __future__ import annotations

from shared.storage.queues import QueueGateway


class StorageMessageQueue:
    def __init__(self, queues: QueueGateway, name: str) -> None:
        self._queues = queues
        self.name = name

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        await self._queues.send(self.name, text, visibility_timeout_s=delay_s or None)

    async def depth(self) -> int:
        return await self._queues.depth(self.name)
