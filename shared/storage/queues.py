"""Storage-queue gateway over azure.storage.queue.aio: send, receive, delete, depth.

Messages are base64-encoded like the Functions host expects (host.json messageEncoding),
never expire (a parked message must outlive the 7-day default), and queues are created on
first use.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.errors import ConcurrencyConflict
from shared.storage.faults import error_code, storage_call

T = TypeVar("T")

#: Azure Storage rejects a queue message above 64 KiB; base64 inflates by 4/3.
MAX_QUEUE_MESSAGE_BYTES = 64 * 1024
#: -1: the message never expires (the service default is 7 days).
NEVER_EXPIRE = -1
#: The service's answer to a delete with the receipt of a lease that lapsed and was taken again.
POP_RECEIPT_MISMATCH = "PopReceiptMismatch"


@dataclass(frozen=True)
class QueueMessage:
    id: str
    pop_receipt: str
    body: bytes
    dequeue_count: int
    inserted_on: datetime | None


def decode_body(raw: str) -> bytes:
    """Base64 as the host writes it; raw text from writers that did not encode (kept, not dropped)."""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode("utf-8")


class QueueGateway:
    def __init__(self, service: QueueServiceClient, *, timeout_s: float) -> None:
        self._service = service
        self._timeout_s = timeout_s
        self._clients: dict[str, QueueClient] = {}
        self._created: set[str] = set()

    def _client(self, queue: str) -> QueueClient:
        client = self._clients.get(queue)
        if client is None:
            client = self._service.get_queue_client(queue, message_encode_policy=TextBase64EncodePolicy())
            self._clients[queue] = client
        return client

    async def _on_queue(self, queue: str, what: str, call: Callable[[QueueClient], Awaitable[T]]) -> T:
        """Run `call`; if the queue does not exist yet, create it and run once more."""
        client = self._client(queue)
        async with storage_call(f"{what} {queue}", self._timeout_s):
            try:
                return await call(client)
            except ResourceNotFoundError as exc:
                if error_code(exc) != "QueueNotFound":
                    raise
            await self.ensure(queue)
            return await call(client)

    async def ensure(self, queue: str) -> None:
        if queue in self._created:
            return
        async with storage_call(f"create queue {queue}", self._timeout_s):
            with contextlib.suppress(ResourceExistsError):
                await self._client(queue).create_queue()
        self._created.add(queue)

    async def send(self, queue: str, text: str, *, visibility_timeout_s: int | None = None) -> str:
        """Enqueue `text`; with a visibility timeout it appears only after that many seconds."""

        async def call(client: QueueClient) -> str:
            sent = await client.send_message(text, visibility_timeout=visibility_timeout_s, time_to_live=NEVER_EXPIRE)
            return str(sent.id)

        return await self._on_queue(queue, "send to", call)

    async def receive(
        self, queue: str, *, max_messages: int = 32, visibility_timeout_s: int = 30, create_missing: bool = True
    ) -> list[QueueMessage]:
        """Up to `max_messages`, hidden for `visibility_timeout_s`. With `create_missing=False` (someone
        else's queue) a missing queue raises the SDK's ResourceNotFoundError instead of being created."""

        async def call(client: QueueClient) -> list[QueueMessage]:
            batch = client.receive_messages(
                messages_per_page=max_messages, max_messages=max_messages, visibility_timeout=visibility_timeout_s
            )
            return [
                QueueMessage(
                    id=m.id,
                    pop_receipt=m.pop_receipt or "",
                    body=decode_body(str(m.content)),
                    dequeue_count=m.dequeue_count or 0,
                    inserted_on=m.inserted_on,
                )
                async for m in batch
            ]

        if not create_missing:
            async with storage_call(f"receive from {queue}", self._timeout_s):
                return await call(self._client(queue))
        return await self._on_queue(queue, "receive from", call)

    async def delete(self, queue: str, message: QueueMessage) -> None:
        """Delete a received message; "not found" counts as done (Azurite says so right after some receives).

        `ConcurrencyConflict` when the receipt is stale: the lease lapsed and another receiver took
        the message, which is theirs now (the service answers 400 PopReceiptMismatch).
        """
        async with storage_call(f"delete from {queue}", self._timeout_s):
            try:
                await self._client(queue).delete_message(message.id, message.pop_receipt)
            except ResourceNotFoundError:
                return
            except HttpResponseError as exc:
                if error_code(exc) == POP_RECEIPT_MISMATCH:
                    lapsed = f"delete from {queue}: the lease lapsed; another receiver holds it"
                    raise ConcurrencyConflict(lapsed) from exc
                raise

    async def depth(self, queue: str) -> int:
        """Approximate number of messages; 0 for a queue that does not exist yet."""
        async with storage_call(f"depth of {queue}", self._timeout_s):
            try:
                properties = await self._client(queue).get_queue_properties()
            except ResourceNotFoundError:
                return 0
            return int(properties.approximate_message_count or 0)

    async def oldest_inserted_on(self, queue: str) -> datetime | None:
        """When the message at the head of the queue was inserted (peek: nothing is locked)."""
        async with storage_call(f"peek {queue}", self._timeout_s):
            try:
                peeked = await self._client(queue).peek_messages(max_messages=1)
            except ResourceNotFoundError:
                return None
        return peeked[0].inserted_on if peeked else None

    async def probe_writable(self, queue: str) -> None:
        """Prove the queue takes writes: send a probe and delete it again at once."""

        async def call(client: QueueClient) -> None:
            sent = await client.send_message("probe", visibility_timeout=60, time_to_live=120)
            with contextlib.suppress(ResourceNotFoundError):
                await client.delete_message(sent.id, sent.pop_receipt)

        await self._on_queue(queue, "probe", call)

    async def list_queues(self, name_starts_with: str) -> list[str]:
        async with storage_call("list queues", self._timeout_s):
            return [q.name async for q in self._service.list_queues(name_starts_with=name_starts_with)]

    async def clear(self, queue: str) -> None:
        async with storage_call(f"clear {queue}", self._timeout_s):
            with contextlib.suppress(ResourceNotFoundError):
                await self._client(queue).clear_messages()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
