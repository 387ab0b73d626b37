"""RECOVERY_BACKEND=servicebus: the recovery flow on a Service Bus queue, and its dead-letter sub-queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.servicebus.exceptions import MessageLockLostError, ServiceBusError

from shared.errors import ConcurrencyConflict, StorageUnavailable
from shared.recovery.models import Flow, RecoveryQueueStatus, SourceKind
from shared.recovery.ports import MessageSource, RecoveryMessage
from shared.storage.recovery_queue import age_s
from shared.values import utc_now

#: Service Bus Standard allows 256 KiB per message; leave room for properties.
SERVICE_BUS_MAX_TEXT_BYTES = 240 * 1024
#: Peeking is how a Service Bus queue is counted without management rights; capped.
SERVICE_BUS_PEEK_LIMIT = 500


class ServiceBusQueueReader:
    """Receiving, completing and counting on one Service Bus queue, or its dead-letter sub-queue."""

    kind: SourceKind = "recovery"
    #: A parked message names its own flow; a dead-lettered one was parked, so it does too.
    flow: Flow = "inbound"

    def __init__(self, client: Any, queue: str, *, timeout_s: float, dead_letter: bool = False) -> None:
        self._client = client
        self._queue = queue
        self._sub_queue = ServiceBusSubQueue.DEAD_LETTER if dead_letter else None
        self.name = f"{queue}/$deadletterqueue" if dead_letter else queue
        self._timeout_s = timeout_s
        self._receiver: Any = None
        self._lock = asyncio.Lock()

    async def _call(self, what: str, operation: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await operation()
        except MessageLockLostError as exc:
            # Only a settle raises it: the message went back to the queue for the next receiver.
            raise ConcurrencyConflict(f"service bus {what} {self.name}: the lock lapsed") from exc
        except (ServiceBusError, TimeoutError) as exc:
            raise StorageUnavailable(f"service bus {what} {self.name}: {type(exc).__name__}") from exc

    def _open_receiver(self) -> Any:
        if self._sub_queue is None:
            return self._client.get_queue_receiver(self._queue)
        return self._client.get_queue_receiver(self._queue, sub_queue=self._sub_queue)

    async def _get_receiver(self) -> Any:
        async with self._lock:
            if self._receiver is None:
                # Peek-lock (the SDK default): a message not completed returns when its lock lapses.
                self._receiver = self._open_receiver()
            return self._receiver

    async def _peek(self, count: int) -> list[ServiceBusReceivedMessage]:
        async def peek() -> list[ServiceBusReceivedMessage]:
            async with self._open_receiver() as receiver:
                return list(await receiver.peek_messages(max_message_count=count))

        result: list[ServiceBusReceivedMessage] = await self._call("peek", peek)
        return result

    async def receive(self, max_messages: int, *, lease_s: int) -> list[RecoveryMessage]:
        receiver = await self._get_receiver()

        async def receive() -> list[ServiceBusReceivedMessage]:
            return list(await receiver.receive_messages(max_message_count=max_messages, max_wait_time=1))

        received = await self._call("receive", receive)
        return [RecoveryMessage(_text_of(m), m.enqueued_time_utc, m) for m in received]

    async def delete(self, message: RecoveryMessage) -> None:
        """`ConcurrencyConflict` when the lock lapsed: the broker hands the message to the next receiver."""
        receiver = await self._get_receiver()
        await self._call("complete", lambda: receiver.complete_message(message.handle))

    async def status(self) -> RecoveryQueueStatus:
        peeked = await self._peek(SERVICE_BUS_PEEK_LIMIT)
        oldest = min((m.enqueued_time_utc for m in peeked if m.enqueued_time_utc), default=None)
        return RecoveryQueueStatus(name=self.name, kind=self.kind, count=len(peeked), oldest_age_s=age_s(oldest))

    async def close(self) -> None:
        if self._receiver is not None:
            await self._receiver.close()
            self._receiver = None


class ServiceBusRecoveryFlow(ServiceBusQueueReader):
    """RECOVERY_BACKEND=servicebus: a Service Bus queue; parked messages are *scheduled* messages.

    The broker dead-letters a message after maxDeliveryCount failed receives; those are
    recovery material too, so the sweep also drains the dead-letter sub-queue.
    """

    backend: Literal["storage", "servicebus"] = "servicebus"
    max_text_bytes = SERVICE_BUS_MAX_TEXT_BYTES

    def __init__(self, client: Any, queue: str, *, timeout_s: float, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(client, queue, timeout_s=timeout_s)
        self._sender: Any = None
        self._clock = clock
        self.dead_letters = ServiceBusQueueReader(client, queue, timeout_s=timeout_s, dead_letter=True)

    def extra_sources(self) -> list[MessageSource]:
        return [self.dead_letters]

    async def _get_sender(self) -> Any:
        async with self._lock:
            if self._sender is None:
                self._sender = self._client.get_queue_sender(self._queue)
            return self._sender

    async def send(self, text: str, *, delay_s: int) -> None:
        sender = await self._get_sender()
        message = ServiceBusMessage(text, content_type="application/json")
        if delay_s:
            at = self._clock() + timedelta(seconds=delay_s)
            await self._call("schedule", lambda: sender.schedule_messages(message, at))
        else:
            await self._call("send", lambda: sender.send_messages(message))

    async def probe(self) -> None:
        # Peeking proves the namespace answers and the entity exists; a send would leave a message.
        await self._peek(1)

    async def put_body(self, name: str, data: bytes, content_type: str | None) -> bool:
        return False  # no blob beside a Service Bus queue: oversized bodies cannot be parked there

    async def take_body(self, name: str) -> bytes | None:
        return None

    async def drop_body(self, name: str) -> None:
        return None

    async def close(self) -> None:
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        await self.dead_letters.close()
        await super().close()
        await self._client.close()


def _text_of(message: ServiceBusReceivedMessage) -> str:
    body = message.body
    if isinstance(body, bytes | str):
        return body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return b"".join(body).decode("utf-8", errors="replace")
