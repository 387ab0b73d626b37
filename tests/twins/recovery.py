"""Twins of what the recovery sweep reads and writes: message sources with leases, the recovery flow,
the last sweep's result, and the main-flow probe."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from shared.errors import ConcurrencyConflict, ReboundError, StorageError
from shared.recovery.models import Flow, RecoveryQueueStatus, SourceKind, SweepResult
from shared.recovery.ports import MessageSource, RecoveryMessage
from tests.twins.faults import Twin

#: A Storage queue message holds 64 KiB after base64 (4/3), less room for the envelope: the
#: text a Storage recovery flow takes, as `StorageRecoveryFlow.max_text_bytes`.
STORAGE_MAX_TEXT_BYTES = 64 * 1024 * 3 // 4 - 1024
#: The same for Service Bus Standard (256 KiB per message, less room for properties).
SERVICE_BUS_MAX_TEXT_BYTES = 240 * 1024
#: A Storage queue hands out at most this many messages per receive.
MAX_RECEIVE = 32

_ids = itertools.count(1)


@dataclass
class _Waiting:
    id: int
    text: str
    enqueued_at: datetime
    visible_at: datetime
    receipts: int = field(default=0)


@dataclass(frozen=True)
class _Handle:
    """What `delete` needs to find the message: its id and the receipt of this receive."""

    id: int
    receipt: int


class MemorySource(Twin):
    """Implements `shared.recovery.ports.MessageSource`: a queue the sweep drains, with leases.

    A received message is invisible for `lease_s`; deleting it needs the handle of the latest
    receive (a lease that lapsed and was taken again by someone else leaves the old handle
    stale, and deleting with it is a `ConcurrencyConflict`, as a stale pop receipt is). Affordances:
    `put(text)` puts a message there (the host moving one to a poison queue), `texts()`.
    """

    def __init__(self, name: str, kind: SourceKind, flow: Flow, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self._name = name
        self._kind: SourceKind = kind
        self._flow: Flow = flow
        self._clock = clock
        self._waiting: list[_Waiting] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def kind(self) -> SourceKind:
        return self._kind

    @property
    def flow(self) -> Flow:
        return self._flow

    async def receive(self, max_messages: int, *, lease_s: int) -> list[RecoveryMessage]:
        async with self.call("receive"):
            now = self._clock()
            taken: list[RecoveryMessage] = []
            for waiting in self._waiting:
                if len(taken) >= min(max_messages, MAX_RECEIVE):
                    break
                if waiting.visible_at <= now:
                    waiting.visible_at = now + timedelta(seconds=lease_s)
                    waiting.receipts += 1
                    handle = _Handle(waiting.id, waiting.receipts)
                    taken.append(RecoveryMessage(waiting.text, waiting.enqueued_at, handle))
            return taken

    async def delete(self, message: RecoveryMessage) -> None:
        async with self.call("delete"):
            handle = message.handle
            assert isinstance(handle, _Handle), "a message this source received"
            waiting = next((w for w in self._waiting if w.id == handle.id), None)
            if waiting is None:
                return  # gone already: deleting twice is harmless
            if waiting.receipts != handle.receipt:
                raise ConcurrencyConflict(f"delete from {self._name}: the lease lapsed; another receiver holds it")
            self._waiting.remove(waiting)

    async def status(self) -> RecoveryQueueStatus:
        async with self.call("status"):
            now = self._clock()
            # The head of the queue as a peek sees it: visible messages only.
            visible = [w.enqueued_at for w in self._waiting if w.visible_at <= now]
            oldest = min(visible, default=None)
            age = None if oldest is None else max(0.0, round((now - oldest).total_seconds(), 1))
            return RecoveryQueueStatus(name=self._name, kind=self._kind, count=len(self._waiting), oldest_age_s=age)

    def _enqueue(self, text: str, delay_s: int) -> None:
        now = self._clock()
        self._waiting.append(_Waiting(next(_ids), text, now, now + timedelta(seconds=delay_s)))

    # --- affordances -------------------------------------------------------------------------

    def put(self, text: str, *, delay_s: int = 0) -> None:
        """A message arrives here from outside (the host gave up on it and moved it to this poison queue)."""
        self._enqueue(text, delay_s)

    def texts(self) -> list[str]:
        """Every waiting message's text, leased and delayed ones included, oldest first."""
        return [w.text for w in self._waiting]


class MemoryRecoveryFlow(MemorySource):
    """Implements `shared.recovery.ports.RecoveryFlow`: the recovery queue and large bodies beside it.

    `backend="servicebus"` plays a flow that cannot keep bodies (`put_body` answers False) and takes
    larger texts. Affordances: `delays` (the `delay_s` of every send), `bodies()`, those of `MemorySource`.
    """

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        name: str = "recovery",
        backend: Literal["storage", "servicebus"] = "storage",
        max_text_bytes: int | None = None,
    ) -> None:
        # A parked message names its own flow; `flow` is only what the protocol asks for.
        super().__init__(name, "recovery", "inbound", clock)
        self._backend: Literal["storage", "servicebus"] = backend
        default = STORAGE_MAX_TEXT_BYTES if backend == "storage" else SERVICE_BUS_MAX_TEXT_BYTES
        self._max_text_bytes = default if max_text_bytes is None else max_text_bytes
        self._bodies: dict[str, bytes] = {}
        self.delays: list[int] = []
        self.closed = False

    @property
    def backend(self) -> Literal["storage", "servicebus"]:
        return self._backend

    @property
    def max_text_bytes(self) -> int:
        return self._max_text_bytes

    async def send(self, text: str, *, delay_s: int) -> None:
        async with self.call("send"):
            if len(text.encode()) > self._max_text_bytes:
                # Azure refuses it too (413); the parker checks the size before it sends.
                raise StorageError(f"{self.name}: a message of {len(text.encode())} bytes is over the flow's limit")
            self._enqueue(text, delay_s)
            self.delays.append(delay_s)

    async def probe(self) -> None:
        async with self.call("probe"):
            return None

    async def put_body(self, name: str, data: bytes, content_type: str | None) -> bool:
        async with self.call("put_body"):
            if self._backend == "servicebus":
                return False
            self._bodies[name] = bytes(data)
            return True

    async def take_body(self, name: str) -> bytes | None:
        async with self.call("take_body"):
            return self._bodies.get(name)

    async def drop_body(self, name: str) -> None:
        async with self.call("drop_body"):
            self._bodies.pop(name, None)

    def extra_sources(self) -> list[MessageSource]:
        return []

    async def close(self) -> None:
        self.closed = True

    # --- affordances -------------------------------------------------------------------------

    def bodies(self) -> dict[str, bytes]:
        """The large bodies kept beside the flow, by name."""
        return dict(self._bodies)


class MemorySweepState(Twin):
    """Implements `shared.recovery.ports.SweepState`."""

    def __init__(self) -> None:
        super().__init__()
        self._last: SweepResult | None = None

    async def last(self) -> SweepResult | None:
        async with self.call("last"):
            return self._last

    async def remember(self, result: SweepResult) -> None:
        async with self.call("remember"):
            self._last = result


class FlowProbeStub(Twin):
    """Implements `shared.recovery.ports.MainFlowProbe`: healthy until `problem` is set."""

    def __init__(self, problem: ReboundError | None = None) -> None:
        super().__init__()
        #: Raised by `check` while set: why the main flow cannot take messages back.
        self.problem = problem

    async def check(self) -> None:
        async with self.call("check"):
            if self.problem is not None:
                raise self.problem
