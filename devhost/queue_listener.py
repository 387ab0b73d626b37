"""Queue triggers with the Storage Queues extension's documented semantics.

Per function: receive up to `batchSize` messages; fetch the next batch once the number
still running drops to `newBatchThreshold` (so at most batchSize + newBatchThreshold run
at once); while the queue is empty, back off exponentially (with jitter) from 100 ms up
to `maxPollingInterval`, and poll fast again as soon as a message arrives.

Per message: it stays invisible while its invocation runs (received with a lease of
DEVHOST_QUEUE_LEASE_S seconds, renewed at half the lease); success deletes it; failure
makes it visible again after `visibilityTimeout`, or, once `dequeue_count` reaches
`maxDequeueCount`, copies it unchanged to `<queue>-poison` and deletes the original.
A message that arrives with a dequeue count already above the maximum (after a crash)
goes to poison without an invocation. Storage errors never stop the listener: they are
logged and polling resumes with back-off.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import random
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from devhost.errors import StartupError
from devhost.functions import QueueFunction
from devhost.host_config import MessageEncoding, QueuesOptions
from devhost.invocation import FunctionInvoker

logger = logging.getLogger(__name__)

#: Setting: seconds a received message stays invisible before it must be renewed.
LEASE_SETTING = "DEVHOST_QUEUE_LEASE_S"
#: The host receives with 10 minutes; devhost uses less so a killed devhost's messages come back soon.
DEFAULT_LEASE_S = 30
#: Pause before retrying a failed lease renewal.
LEASE_RETRY_S = 1.0
#: The first (and fastest) polling delay, as in the host's back-off strategy.
MIN_POLLING_INTERVAL_S = 0.1
#: How long start-up waits for the queue to be created before leaving it to the poll loop.
START_QUEUE_TIMEOUT_S = 3.0
#: Relative jitter on polling delays, so several listeners do not poll in lock-step.
POLLING_JITTER = 0.2

# The SDK's default retry waits 15 s+ per attempt; the listener has its own back-off, so
# retry briefly (for settle operations) and keep a frozen storage from hanging a poll.
CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "initial_backoff": 1,
    "increment_base": 2,
    "random_jitter_range": 1,
    "connection_timeout": 5,
    "read_timeout": 30,
    # Not the environment's proxies and ~/.netrc: aiohttp would look them up in a thread on every call
    # (a third of the listener's CPU under load, issue 15). Storage here is the local emulator.
    "use_env_settings": False,
}


def lease_seconds(settings: Mapping[str, str]) -> int:
    raw = settings.get(LEASE_SETTING, "").strip()
    if not raw:
        return DEFAULT_LEASE_S
    if not raw.isdigit() or int(raw) < 1:
        raise StartupError(f"{LEASE_SETTING}={raw!r} must be a whole number of seconds, at least 1")
    return int(raw)


def decode_body(content: str | None, encoding: MessageEncoding) -> bytes:
    """The message body as bytes; ValueError when base64 is expected and the content is not."""
    text = content or ""
    if encoding is MessageEncoding.NONE:
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise ValueError(f"message is not valid base64 ({error})") from None


def _dequeue_count(message: QueueMessage) -> int:
    # Received messages always carry it; the SDK types it optional for sent ones.
    return message.dequeue_count or 0


def next_polling_delay(current_s: float, maximum_s: float) -> float:
    return min(current_s * 2, maximum_s)


def jittered(delay_s: float, rng: random.Random) -> float:
    return delay_s * rng.uniform(1 - POLLING_JITTER, 1 + POLLING_JITTER)


class _MessageLease:
    """Keeps one received message invisible while it is processed, tracking the newest pop receipt."""

    def __init__(self, client: QueueClient, message: QueueMessage, lease_s: int) -> None:
        self._client = client
        self.message_id: str = message.id
        self.pop_receipt: str | None = message.pop_receipt
        self._lease_s = lease_s
        self._released = asyncio.Event()
        self._task = asyncio.create_task(self._renew_until_released(), name=f"lease:{message.id}")

    async def _renew_until_released(self) -> None:
        delay_s = self._lease_s / 2
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), timeout=delay_s)
                return
            try:
                updated = await self._client.update_message(
                    self.message_id, self.pop_receipt, visibility_timeout=self._lease_s
                )
            except HttpResponseError as error:
                if error.status_code in (400, 404):
                    # Pop receipt no longer valid: the lease ran out and someone else holds the message.
                    logger.warning("message %s: lease lost; it may be delivered again", self.message_id)
                    return
                logger.warning("message %s: lease renewal failed (%s); retrying", self.message_id, error.status_code)
                delay_s = LEASE_RETRY_S
                continue
            except AzureError as error:
                logger.warning("message %s: lease renewal failed (%s); retrying", self.message_id, type(error).__name__)
                # Retry well before the current lease runs out rather than after another half lease.
                delay_s = LEASE_RETRY_S
                continue
            self.pop_receipt = updated.pop_receipt
            delay_s = self._lease_s / 2

    async def release(self) -> None:
        """Stop renewing; waits for a renewal in progress so `pop_receipt` is the newest."""
        self._released.set()
        await self._task

    def abandon(self) -> None:
        """Stop renewing at once; the message reappears when the current lease runs out."""
        self._task.cancel()


class QueueListener:
    def __init__(
        self,
        function: QueueFunction,
        options: QueuesOptions,
        invoker: FunctionInvoker,
        *,
        lease_s: int = DEFAULT_LEASE_S,
        rng: random.Random | None = None,
    ) -> None:
        self.function = function
        self.options = options
        self._invoker = invoker
        self._lease_s = lease_s
        self._rng = rng or random.Random()
        self._client = QueueClient.from_connection_string(
            function.connection_string, function.queue_name, **CLIENT_OPTIONS
        )
        self._poison_client = QueueClient.from_connection_string(
            function.connection_string, function.poison_queue_name, **CLIENT_OPTIONS
        )
        self._queue_ready = False
        self._poison_queue_ready = False
        self._stopping = asyncio.Event()
        self._capacity_changed = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def depth(self) -> int | None:
        """Approximate messages waiting; None when the queue cannot be asked right now."""
        try:
            properties = await self._client.get_queue_properties()
        except AzureError:
            return None
        return int(properties.approximate_message_count or 0)

    async def start(self) -> None:
        """Create the queue if needed (like the host) and start polling.

        Storage being unreachable does not fail or stall start-up: after a short wait the
        poll loop takes over creating the queue, with back-off.
        """
        with contextlib.suppress(AzureError, TimeoutError):
            await asyncio.wait_for(self._ensure_queue(self._client), timeout=START_QUEUE_TIMEOUT_S)
            self._queue_ready = True
        self._poll_task = asyncio.create_task(self._poll(), name=f"queue:{self.function.name}")

    async def stop(self, grace_s: float) -> None:
        """Stop polling; running invocations get `grace_s` to finish, the rest are cancelled.

        A cancelled invocation's message is neither deleted nor released: it reappears
        when its lease runs out, as after a host crash.
        """
        self._stopping.set()
        self._capacity_changed.set()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=grace_s)
            if pending:
                logger.warning(
                    "queue %s: %d invocation(s) still running after %.0f s; their messages will reappear",
                    self.function.queue_name,
                    len(pending),
                    grace_s,
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        await self._client.close()
        await self._poison_client.close()

    async def _ensure_queue(self, client: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()

    async def _poll(self) -> None:
        delay_s = MIN_POLLING_INTERVAL_S
        failing = False
        while not self._stopping.is_set():
            await self._wait_for_capacity()
            if self._stopping.is_set():
                return
            try:
                if not self._queue_ready:
                    await self._ensure_queue(self._client)
                    self._queue_ready = True
                messages = await self._receive_batch()
            except Exception as error:
                if isinstance(error, ResourceNotFoundError):
                    # Someone deleted the queue; the host recreates it, and so do we.
                    self._queue_ready = False
                self._log_poll_error(error, repeated=failing)
                failing = True
                delay_s = next_polling_delay(delay_s, self.options.max_polling_interval_s)
                await self._pause(jittered(delay_s, self._rng))
                continue
            if failing:
                logger.info("queue %s: polling recovered", self.function.queue_name)
                failing = False
            if not messages:
                await self._pause(jittered(delay_s, self._rng))
                delay_s = next_polling_delay(delay_s, self.options.max_polling_interval_s)
                continue
            delay_s = MIN_POLLING_INTERVAL_S
            for message in messages:
                task = asyncio.create_task(self._process(message), name=f"message:{message.id}")
                self._in_flight.add(task)
                task.add_done_callback(self._finished)

    def _log_poll_error(self, error: Exception, *, repeated: bool) -> None:
        # The first failure of a streak is a warning; repeats would flood the log while storage is down.
        level = logging.DEBUG if repeated else logging.WARNING
        if isinstance(error, AzureError):
            name = type(error).__name__
            logger.log(level, "queue %s: polling failed (%s); backing off", self.function.queue_name, name)
        else:
            logger.error("queue %s: unexpected polling error; backing off", self.function.queue_name, exc_info=error)

    async def _receive_batch(self) -> list[QueueMessage]:
        pages = self._client.receive_messages(
            messages_per_page=self.options.batch_size, visibility_timeout=self._lease_s
        ).by_page()
        try:
            page = await anext(pages)
        except StopAsyncIteration:
            return []
        return [message async for message in page]

    async def _wait_for_capacity(self) -> None:
        while self.in_flight > self.options.new_batch_threshold and not self._stopping.is_set():
            self._capacity_changed.clear()
            await self._capacity_changed.wait()

    async def _pause(self, delay_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay_s)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._capacity_changed.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("queue %s: message handling crashed", self.function.queue_name, exc_info=task.exception())

    async def _process(self, message: QueueMessage) -> None:
        lease = _MessageLease(self._client, message, self._lease_s)
        try:
            succeeded = await self._invoke(message)
        except asyncio.CancelledError:
            lease.abandon()
            raise
        await lease.release()
        if succeeded:
            await self._delete(lease.message_id, lease.pop_receipt)
        elif _dequeue_count(message) >= self.options.max_dequeue_count:
            await self._move_to_poison(message, lease.pop_receipt)
        else:
            await self._make_visible_later(lease.message_id, lease.pop_receipt)

    async def _invoke(self, message: QueueMessage) -> bool:
        if _dequeue_count(message) > self.options.max_dequeue_count:
            # Already over the limit (e.g. its host died mid-invocation): straight to poison.
            return False
        try:
            body = decode_body(message.content, self.options.message_encoding)
        except ValueError as error:
            logger.error("function %s message %s: %s", self.function.name, message.id, error)
            return False
        trigger_value = FunctionQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        result = await self._invoker.invoke(self.function, trigger_value)
        return result.succeeded

    async def _delete(self, message_id: str, pop_receipt: str | None) -> None:
        try:
            await self._client.delete_message(message_id, pop_receipt)
        except ResourceNotFoundError:
            # Azurite occasionally answers 404 to a delete right after a receive; gone is gone.
            logger.debug("message %s: already deleted", message_id)
        except AzureError as error:
            name = type(error).__name__
            logger.warning("message %s: delete failed (%s); it will be delivered again", message_id, name)

    async def _make_visible_later(self, message_id: str, pop_receipt: str | None) -> None:
        try:
            await self._client.update_message(
                message_id, pop_receipt, visibility_timeout=math.ceil(self.options.visibility_timeout_s)
            )
        except AzureError as error:
            logger.warning(
                "message %s: could not release after failure (%s); it reappears when its lease ends",
                message_id,
                type(error).__name__,
            )

    async def _move_to_poison(self, message: QueueMessage, pop_receipt: str | None) -> None:
        poison_name = self.function.poison_queue_name
        logger.warning(
            "Message has reached MaxDequeueCount of %d. Moving message %s to queue '%s'.",
            self.options.max_dequeue_count,
            message.id,
            poison_name,
        )
        try:
            if not self._poison_queue_ready:
                await self._ensure_queue(self._poison_client)
                self._poison_queue_ready = True
            # The content is copied as stored, so it keeps the original's encoding.
            await self._poison_client.send_message(message.content)
        except AzureError as error:
            logger.warning(
                "message %s: copy to %s failed (%s); it will be retried", message.id, poison_name, type(error).__name__
            )
            return
        await self._delete(message.id, pop_receipt)
