"""Service Bus delivery: one message per delivery, on the entity the endpoint names.

The envelope id becomes the message id, so an entity with duplicate detection drops the
copies that at-least-once delivery produces. One AMQP sender per entity stays open and is
reused: opening a link costs a round trip or more, and concurrent first sends must not each
open their own (the lock).

Service Bus has no local emulator here, so tests run against `FakeServiceBusClient`
(`tests/twins/service_bus.py`), which stands in at the SDK client boundary described
by `SdkServiceBusClient` below. The client itself is built by `shared.storage.clients.build_service_bus_client`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    MessagingEntityDisabledError,
    MessagingEntityNotFoundError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusError,
)

from shared.config.models import ServiceBusEndpoint
from shared.delivery.adapters.base import Delivery, Response
from shared.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)

#: What a broker's acknowledgement is reported as, like every other queued delivery.
QUEUED_STATUS = 201
#: The SDK's own operation timeout (it covers the SDK's retries too).
DEFAULT_SEND_TIMEOUT_S = 30.0
#: Our hard bound sits a little past the SDK's, for when the SDK fails to keep its own.
SEND_TIMEOUT_GRACE_S = 5.0
#: Closing a stuck link must not hold the attempt up for long either.
CLOSE_TIMEOUT_S = 5.0

#: Retrying cannot help: the message, the entity or our credentials are wrong.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeExceededError,
    MessagingEntityNotFoundError,
    MessagingEntityDisabledError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ClientAuthenticationError,
)
# Every other ServiceBusError (connection, timeout, server busy, communication, quota) is
# transient: the broker or the path to it may recover, and the engine's retry budget bounds it.


class SdkQueueSender(Protocol):
    """The subset of `azure.servicebus.aio.ServiceBusSender` this module uses."""

    async def __aenter__(self) -> object: ...

    # The SDK's signature, mirrored: its timeout bounds its internal retries, which asyncio.timeout cannot reach.
    async def send_messages(self, message: ServiceBusMessage, *, timeout: float | None = None) -> None: ...  # noqa: ASYNC109

    async def close(self) -> None: ...


class SdkServiceBusClient(Protocol):
    """The subset of `azure.servicebus.aio.ServiceBusClient` this module uses (the fake implements it)."""

    fully_qualified_namespace: str

    def get_queue_sender(self, queue_name: str) -> SdkQueueSender: ...

    async def close(self) -> None: ...


def map_service_bus_error(exc: Exception, target: str) -> DeliveryError:
    """The delivery error for an SDK failure: permanent when retrying cannot help, else transient."""
    reason = f"{target}: {type(exc).__name__}"
    if isinstance(exc, PERMANENT_ERRORS):
        return PermanentDeliveryError(reason)
    return TransientDeliveryError(reason)


class ServiceBusSender:
    """Sends to one queue or topic. Owns its AMQP sender; the client belongs to the registry.

    (Named for the endpoint kind like its siblings; it is not the SDK's `ServiceBusSender`,
    which this module never imports.)
    """

    def __init__(
        self,
        endpoint: ServiceBusEndpoint,
        client: SdkServiceBusClient,
        *,
        timeout_s: float = DEFAULT_SEND_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self._client = client
        self._timeout_s = timeout_s
        self._sender: SdkQueueSender | None = None
        self._lock = asyncio.Lock()
        self.target = f"service_bus {client.fully_qualified_namespace}/{endpoint.entity}"

    async def send(self, delivery: Delivery) -> Response:
        message = self._message(delivery)
        sender: SdkQueueSender | None = None
        try:
            async with asyncio.timeout(self._timeout_s + SEND_TIMEOUT_GRACE_S):
                sender = await self._open_sender()
                await sender.send_messages(message, timeout=self._timeout_s)
        except TimeoutError:
            # The SDK did not keep its own timeout, so its link is suspect: the next attempt opens a new one.
            if sender is not None:
                await self._discard(sender)
            reason = f"no acknowledgement within {self._timeout_s:g} s"
            raise TransientDeliveryError(f"{self.target}: {reason}") from None
        except (ServiceBusError, ClientAuthenticationError) as exc:
            logger.debug("delivery to %s failed: %s", self.target, type(exc).__name__)
            raise map_service_bus_error(exc, self.target) from exc
        return Response(QUEUED_STATUS)

    def _message(self, delivery: Delivery) -> ServiceBusMessage:
        properties: dict[str | bytes, Any] = {name: value for name, value in delivery.headers.items()}
        try:
            return ServiceBusMessage(
                delivery.body,
                content_type=delivery.content_type,
                correlation_id=delivery.correlation_id,
                # The broker's duplicate detection keys on this.
                message_id=delivery.message_id,
                application_properties=properties or None,
            )
        except (TypeError, ValueError) as exc:
            # e.g. an id over the broker's 128 characters: the message itself cannot be sent, ever.
            raise PermanentDeliveryError(f"{self.target}: message not accepted by the SDK: {exc}") from exc

    async def _open_sender(self) -> SdkQueueSender:
        if self._sender is not None:
            return self._sender
        async with self._lock:
            if self._sender is None:
                try:
                    sender = self._client.get_queue_sender(self.endpoint.entity)
                except ValueError as exc:
                    # The connection string's EntityPath names another entity.
                    raise PermanentDeliveryError(f"{self.target}: {exc}") from exc
                # Open the link here, under the lock: the SDK would otherwise open one per concurrent first send.
                try:
                    await sender.__aenter__()
                except BaseException:
                    await self._discard(sender)
                    raise
                self._sender = sender
            return self._sender

    async def _discard(self, sender: SdkQueueSender) -> None:
        if self._sender is sender:
            self._sender = None
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await sender.close()
        except Exception as exc:  # a link we are abandoning anyway; its close failing changes nothing
            logger.debug("closing the abandoned sender of %s failed: %s", self.target, type(exc).__name__)

    async def aclose(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.close()
