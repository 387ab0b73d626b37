"""Service Bus source: a queue or a topic subscription, peek-lock; a message is completed only after it is enqueued.

An item's key is the message id (the sender's, which the broker's duplicate detection uses too),
or its sequence number when it has none. A message not taken is abandoned, so it is delivered again
at once; one whose lock lapsed before it was completed comes back and is recognised as picked.

Service Bus has no local emulator here: tests use `FakeServiceBusClient` (tests/twins/service_bus.py)
at the SDK client boundary described by `SdkReceivingClient`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus.exceptions import (
    MessagingEntityDisabledError,
    MessagingEntityNotFoundError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusError,
)

from shared.errors import PermanentPickupError, TransientPickupError
from shared.pickup.models import ServiceBusSource, describe
from shared.pickup.ports import ItemContent, SourceItem

T = TypeVar("T")

#: Seconds a receive waits for messages to arrive before it answers with what it has.
RECEIVE_WAIT_S = 1.0
#: Our bound on one operation (the SDK's own retries run inside it).
OPERATION_TIMEOUT_S = 30.0
_PERMANENT = (
    MessagingEntityNotFoundError,
    MessagingEntityDisabledError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ClientAuthenticationError,
)


class SdkReceivingClient(Protocol):
    """The subset of `azure.servicebus.aio.ServiceBusClient` this reader uses (the fake implements it)."""

    fully_qualified_namespace: str

    def get_queue_receiver(self, queue_name: str, **kwargs: Any) -> Any: ...

    def get_subscription_receiver(self, topic_name: str, subscription_name: str, **kwargs: Any) -> Any: ...

    async def close(self) -> None: ...


class ServiceBusReader:
    rereadable = False

    def __init__(self, source: ServiceBusSource, client: SdkReceivingClient) -> None:
        self.source = source
        self._client = client
        self._receiver: Any = None
        self.target = describe(source)

    async def open(self) -> None:
        topic_subscription = self.source.topic_subscription
        try:
            if topic_subscription is None:
                receiver = self._client.get_queue_receiver(self.source.entity)
            else:
                receiver = self._client.get_subscription_receiver(*topic_subscription)
        except ValueError as exc:
            # e.g. the connection string's EntityPath names another entity.
            raise PermanentPickupError(f"{self.target}: {exc}") from exc
        self._receiver = receiver

    async def list(self, limit: int) -> list[SourceItem]:
        receiver = self._receiver
        received = await self._call(
            "receive", lambda: receiver.receive_messages(max_message_count=limit, max_wait_time=RECEIVE_WAIT_S)
        )
        items = []
        for message in received:
            key = f"message {message.message_id}" if message.message_id else f"sequence {message.sequence_number}"
            items.append(SourceItem(key=key, name=None, size=None, handle=message))
        return items

    async def read(self, item: SourceItem) -> ItemContent:
        message: Any = item.handle
        body = message.body
        data = body if isinstance(body, bytes) else b"".join(body)
        properties = getattr(message, "application_properties", None) or {}
        headers = {_text(name): _text(value) for name, value in properties.items()}
        return ItemContent(
            data=data, content_type=getattr(message, "content_type", None), key=item.key, headers=headers
        )

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        receiver = self._receiver
        await self._call("complete", lambda: receiver.complete_message(item.handle))

    async def give_back(self, item: SourceItem) -> None:
        receiver = self._receiver
        await self._call("abandon", lambda: receiver.abandon_message(item.handle))

    async def close(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            await receiver.close()

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S):
                return await operation()
        except TimeoutError as exc:
            raise TransientPickupError(f"{self.target}: {what}: no answer within {OPERATION_TIMEOUT_S:g} s") from exc
        except _PERMANENT as exc:
            raise PermanentPickupError(f"{self.target}: {what}: {type(exc).__name__}") from exc
        except ServiceBusError as exc:
            # Connection, timeout, server busy, a lock that was lost: the broker or the path may recover.
            raise TransientPickupError(f"{self.target}: {what}: {type(exc).__name__}") from exc


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
