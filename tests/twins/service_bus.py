"""FAKE Service Bus, standing in for `azure.servicebus.aio.ServiceBusClient` at the SDK boundary.

Service Bus has no local emulator here (DESIGN.md section 9), so code that talks to it is
tested against this fake instead. It implements the subset of the SDK client Rebound uses:
`get_queue_sender(name)` returning a sender with `async send_messages(message)`, `close()`
and async-context-manager support on both. It records the real `ServiceBusMessage` objects
per entity, enforces the SDK's "closed handler" rule and the broker's size limit, and can be
scripted to raise given SDK exceptions, so the code under test sees what the SDK would raise.
It is never wired in outside tests.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import MessageSizeExceededError

#: The Standard tier's limit; Premium allows more (pass `max_message_bytes`).
STANDARD_MAX_MESSAGE_BYTES = 256 * 1024


def message_body(message: ServiceBusMessage) -> bytes:
    """The body of a data message as bytes (the SDK exposes it as a generator of sections)."""
    return b"".join(message.body)


class FakeQueueSender:
    """A sender to one entity of a `FakeServiceBusClient`."""

    def __init__(self, client: FakeServiceBusClient, entity_name: str) -> None:
        self._client = client
        self.entity_name = entity_name
        self.opened = False
        self.closed = False

    async def __aenter__(self) -> FakeQueueSender:
        self._check_live()
        self._client.raise_scripted_open_error(self.entity_name)
        self.opened = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def send_messages(
        self,
        message: ServiceBusMessage | list[ServiceBusMessage],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature, which the fake mirrors
    ) -> None:
        self._check_live()
        if timeout is not None and timeout <= 0:
            raise ValueError("The timeout must be greater than 0.")
        messages = message if isinstance(message, list) else [message]
        await self._client.before_send(self.entity_name)
        for one in messages:
            size = len(message_body(one))
            if size > self._client.max_message_bytes:
                raise MessageSizeExceededError(
                    message=f"message of {size} bytes exceeds the fake's {self._client.max_message_bytes}"
                )
        for one in messages:
            self._client.enqueue(self.entity_name, one)

    async def schedule_messages(
        self, messages: ServiceBusMessage | list[ServiceBusMessage], schedule_time_utc: datetime, **kwargs: object
    ) -> list[int]:
        """Like the SDK: the message is accepted now and becomes receivable at `schedule_time_utc`."""
        self._check_live()
        await self._client.before_send(self.entity_name)
        batch = messages if isinstance(messages, list) else [messages]
        return [self._client.enqueue(self.entity_name, one, visible_at=schedule_time_utc) for one in batch]

    async def close(self) -> None:
        self.closed = True

    def _check_live(self) -> None:
        # The SDK raises exactly this for a handler used after close (its own or its client's).
        if self.closed or self._client.closed:
            raise ValueError(
                "The handler has already been shutdown. Please use ServiceBusClient to create a new instance."
            )


@dataclass
class FakeReceivedMessage:
    """What a receiver hands out: the SDK's `ServiceBusReceivedMessage` fields Rebound reads."""

    body: bytes
    enqueued_time_utc: datetime
    sequence_number: int
    message_id: str | None
    scheduled_enqueue_time_utc: datetime | None = None
    content_type: str | None = None
    application_properties: dict[str | bytes, object] | None = None


@dataclass
class _Stored:
    message: FakeReceivedMessage
    visible_at: datetime
    locked_until: datetime | None = None


class FakeQueueReceiver:
    """A peek-lock receiver on one entity: received messages are locked until completed or the lock lapses."""

    def __init__(self, client: FakeServiceBusClient, entity_name: str, lock_s: float = 30.0) -> None:
        self._client = client
        self.entity_name = entity_name
        self.lock_s = lock_s
        self.closed = False

    async def __aenter__(self) -> FakeQueueReceiver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def receive_messages(
        self, max_message_count: int | None = 1, max_wait_time: float | None = None
    ) -> list[FakeReceivedMessage]:
        self._check_live()
        await self._client.before_send(self.entity_name)
        now = datetime.now(UTC)
        taken: list[FakeReceivedMessage] = []
        for stored in self._client.queue(self.entity_name):
            if len(taken) >= (max_message_count or 1):
                break
            if stored.visible_at <= now and (stored.locked_until is None or stored.locked_until <= now):
                stored.locked_until = now + timedelta(seconds=self.lock_s)
                taken.append(stored.message)
        return taken

    async def peek_messages(self, max_message_count: int = 1, **kwargs: object) -> list[FakeReceivedMessage]:
        self._check_live()
        await self._client.before_send(self.entity_name)
        return [stored.message for stored in self._client.queue(self.entity_name)[:max_message_count]]

    async def complete_message(self, message: FakeReceivedMessage) -> None:
        self._check_live()
        await self._client.before_settle(self.entity_name)
        entries = self._client.queue(self.entity_name)
        entries[:] = [s for s in entries if s.message.sequence_number != message.sequence_number]
        self._client.completed[self.entity_name].append(message)

    async def abandon_message(self, message: FakeReceivedMessage) -> None:
        """Like the SDK: the lock is released, so the message can be received again at once."""
        self._check_live()
        for stored in self._client.queue(self.entity_name):
            if stored.message.sequence_number == message.sequence_number:
                stored.locked_until = None
        self._client.abandoned[self.entity_name].append(message)

    async def close(self) -> None:
        self.closed = True

    def _check_live(self) -> None:
        if self.closed or self._client.closed:
            raise ValueError(
                "The handler has already been shutdown. Please use ServiceBusClient to create a new instance."
            )


class FakeServiceBusClient:
    """FAKE: an in-memory `ServiceBusClient` for tests; see the module docstring."""

    def __init__(
        self,
        fully_qualified_namespace: str = "fake.servicebus.windows.net",
        *,
        max_message_bytes: int = STANDARD_MAX_MESSAGE_BYTES,
    ) -> None:
        self.fully_qualified_namespace = fully_qualified_namespace
        self.max_message_bytes = max_message_bytes
        #: Every message accepted, per entity, in order.
        self.sent: defaultdict[str, list[ServiceBusMessage]] = defaultdict(list)
        #: Every sender handed out, in order (to assert reuse).
        self.senders: list[FakeQueueSender] = []
        self.closed = False
        self._send_errors: defaultdict[str, deque[Exception]] = defaultdict(deque)
        self._open_errors: defaultdict[str, deque[Exception]] = defaultdict(deque)
        self._always: dict[str, Exception] = {}
        self._send_delay_s: dict[str, float] = {}
        self._queues: defaultdict[str, list[_Stored]] = defaultdict(list)
        self._settle_errors: defaultdict[str, deque[Exception]] = defaultdict(deque)
        #: Messages completed and abandoned through receivers, per entity.
        self.completed: defaultdict[str, list[FakeReceivedMessage]] = defaultdict(list)
        self.abandoned: defaultdict[str, list[FakeReceivedMessage]] = defaultdict(list)
        self._sequence = 0
        self.receivers: list[FakeQueueReceiver] = []

    # --- the SDK surface ----------------------------------------------------------------------

    def get_queue_receiver(self, queue_name: str, *, sub_queue: object = None, **kwargs: object) -> FakeQueueReceiver:
        """`sub_queue=ServiceBusSubQueue.DEAD_LETTER` reads entity `<queue>/$deadletterqueue`."""
        if self.closed:
            raise ValueError("The client has been closed.")
        entity = queue_name if sub_queue is None else f"{queue_name}/$deadletterqueue"
        receiver = FakeQueueReceiver(self, entity)
        self.receivers.append(receiver)
        return receiver

    def get_subscription_receiver(self, topic_name: str, subscription_name: str, **kwargs: object) -> FakeQueueReceiver:
        """A subscription is modelled as the entity `<topic>/subscriptions/<name>`."""
        return self.get_queue_receiver(f"{topic_name}/subscriptions/{subscription_name}")

    def get_queue_sender(self, queue_name: str, **kwargs: object) -> FakeQueueSender:
        if self.closed:
            raise ValueError("The client has been closed.")
        sender = FakeQueueSender(self, queue_name)
        self.senders.append(sender)
        return sender

    async def close(self) -> None:
        for sender in self.senders:
            await sender.close()
        for receiver in self.receivers:
            await receiver.close()
        self.closed = True

    async def __aenter__(self) -> FakeServiceBusClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- scripting and inspection -------------------------------------------------------------

    def fail_next_sends(self, entity: str, *errors: Exception) -> None:
        """The next sends to `entity` raise these, one each, in order; later sends succeed again."""
        self._send_errors[entity].extend(errors)

    def fail_next_opens(self, entity: str, *errors: Exception) -> None:
        """Opening the next senders to `entity` raises these (the SDK opens the link on first use)."""
        self._open_errors[entity].extend(errors)

    def fail_always(self, entity: str, error: Exception | None) -> None:
        """Every send to `entity` raises `error` until it is set back to None (an outage)."""
        if error is None:
            self._always.pop(entity, None)
        else:
            self._always[entity] = error

    def fail_next_settles(self, entity: str, *errors: Exception) -> None:
        """The next completes on `entity` raise these (a lock lost, a connection dropped)."""
        self._settle_errors[entity].extend(errors)

    async def before_settle(self, entity: str) -> None:
        if self._settle_errors[entity]:
            raise self._settle_errors[entity].popleft()

    def delay_sends(self, entity: str, seconds: float) -> None:
        """Sends to `entity` take this long before they complete (a slow or stuck broker)."""
        self._send_delay_s[entity] = seconds

    def bodies(self, entity: str) -> list[bytes]:
        return [message_body(message) for message in self.sent[entity]]

    # --- used by FakeQueueSender --------------------------------------------------------------

    async def before_send(self, entity: str) -> None:
        delay_s = self._send_delay_s.get(entity)
        if delay_s:
            await asyncio.sleep(delay_s)
        if self._send_errors[entity]:
            raise self._send_errors[entity].popleft()
        if entity in self._always:
            raise self._always[entity]

    def queue(self, entity: str) -> list[_Stored]:
        """The entity's receivable and scheduled messages, in sequence order."""
        return self._queues[entity]

    def enqueue(self, entity: str, message: ServiceBusMessage, *, visible_at: datetime | None = None) -> int:
        self._sequence += 1
        now = datetime.now(UTC)
        received = FakeReceivedMessage(
            body=message_body(message),
            enqueued_time_utc=now,
            sequence_number=self._sequence,
            message_id=message.message_id,
            scheduled_enqueue_time_utc=visible_at,
            content_type=message.content_type,
            application_properties=dict(message.application_properties or {}),
        )
        self._queues[entity].append(_Stored(received, visible_at or now))
        self.sent[entity].append(message)
        return self._sequence

    def raise_scripted_open_error(self, entity: str) -> None:
        if self._open_errors[entity]:
            raise self._open_errors[entity].popleft()
