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
        self._client.sent[self.entity_name].extend(messages)

    async def close(self) -> None:
        self.closed = True

    def _check_live(self) -> None:
        # The SDK raises exactly this for a handler used after close (its own or its client's).
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

    # --- the SDK surface ----------------------------------------------------------------------

    def get_queue_sender(self, queue_name: str, **kwargs: object) -> FakeQueueSender:
        if self.closed:
            raise ValueError("The client has been closed.")
        sender = FakeQueueSender(self, queue_name)
        self.senders.append(sender)
        return sender

    async def close(self) -> None:
        for sender in self.senders:
            await sender.close()
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

    def raise_scripted_open_error(self, entity: str) -> None:
        if self._open_errors[entity]:
            raise self._open_errors[entity].popleft()
