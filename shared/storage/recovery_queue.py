"""Recovery material in Storage queues: the recovery flow on RecoveryStorage (queue `recovery`, large
bodies in `recoverypayloads`), and the host's poison queues of the main account. The sweep drains
all of them the same way (the Service Bus flow is recovery_service_bus.py).

Everything the sweep reads is a `RecoveryMessage` whose handle is the received `QueueMessage`,
deleted once the message has been moved on (delete after enqueue: a crash in between
duplicates, never loses).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from azure.core.exceptions import ResourceNotFoundError

from shared.recovery.models import Flow, RecoveryQueueStatus, SourceKind
from shared.recovery.ports import MessageSource, RecoveryMessage
from shared.storage.blobs import BlobGateway
from shared.storage.queues import MAX_QUEUE_MESSAGE_BYTES, QueueGateway, QueueMessage
from shared.values import utc_now

#: A Storage queue message is 64 KiB after base64 (4/3): this much text fits.
STORAGE_MAX_TEXT_BYTES = MAX_QUEUE_MESSAGE_BYTES * 3 // 4 - 1024


def age_s(inserted: datetime | None) -> float | None:
    return None if inserted is None else max(0.0, round((utc_now() - inserted).total_seconds(), 1))


class StorageQueueSource:
    """A Storage queue as a source: the recovery queue, a `*-poison` queue of the main account, or a
    retired inbound shard. With `if_present` a missing queue is empty and is never created (a retired
    shard's queues are only read until they are gone)."""

    def __init__(
        self, queues: QueueGateway, queue: str, kind: SourceKind, flow: Flow, *, if_present: bool = False
    ) -> None:
        self._queues = queues
        self.name = queue
        self.kind = kind
        self.flow = flow
        self._if_present = if_present

    async def receive(self, max_messages: int, *, lease_s: int) -> list[RecoveryMessage]:
        try:
            received = await self._queues.receive(
                self.name,
                max_messages=min(max_messages, 32),
                visibility_timeout_s=lease_s,
                create_missing=not self._if_present,
            )
        except ResourceNotFoundError:
            if not self._if_present:
                raise
            return []
        return [RecoveryMessage(m.body.decode("utf-8", errors="replace"), m.inserted_on, m) for m in received]

    async def delete(self, message: RecoveryMessage) -> None:
        handle = message.handle
        assert isinstance(handle, QueueMessage), "a message this source received"
        await self._queues.delete(self.name, handle)

    async def status(self) -> RecoveryQueueStatus:
        count = await self._queues.depth(self.name)
        oldest = await self._queues.oldest_inserted_on(self.name) if count else None
        return RecoveryQueueStatus(name=self.name, kind=self.kind, count=count, oldest_age_s=age_s(oldest))


class StorageRecoveryFlow(StorageQueueSource):
    """The default backend: queue `recovery` on the RecoveryStorage account, large bodies in its blobs."""

    backend: Literal["storage", "servicebus"] = "storage"
    max_text_bytes = STORAGE_MAX_TEXT_BYTES

    def __init__(self, queues: QueueGateway, blobs: BlobGateway, queue: str, container: str) -> None:
        # A parked message names its own flow; `flow` here is only what the protocol asks for.
        super().__init__(queues, queue, "recovery", "inbound")
        self._blobs = blobs
        self._container = container

    async def send(self, text: str, *, delay_s: int) -> None:
        await self._queues.send(self.name, text, visibility_timeout_s=delay_s or None)

    async def probe(self) -> None:
        await self._queues.probe_writable(self.name)

    async def put_body(self, name: str, data: bytes, content_type: str | None) -> bool:
        await self._blobs.upload(self._container, name, data, content_type=content_type)
        return True

    async def take_body(self, name: str) -> bytes | None:
        blob = await self._blobs.download(self._container, name)
        return None if blob is None else blob.data

    async def drop_body(self, name: str) -> None:
        await self._blobs.delete(self._container, name)

    def extra_sources(self) -> list[MessageSource]:
        return []

    async def close(self) -> None:
        """The account's clients belong to the Services that built them."""
