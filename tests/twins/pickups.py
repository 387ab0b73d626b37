"""Twins for pickup: the state and seen stores, a source whose items live in memory, and the few
stores around the runner (configs, `inbound`, payloads, the recovery flow, the failure sink).

`MemoryPickupStates` keeps the conditional-write contract of `TablePickupStates` (a version per
write, `ConcurrencyConflict` on a stale one); `MemorySource` behaves like a file source
(`rereadable=True`) or a message source (`rereadable=False`: received items are locked until
removed or given back), and can be scripted to fail an operation, transiently or for good.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.config.models import IntegrationConfig
from shared.errors import ConcurrencyConflict, PickupError, StorageError, StorageUnavailable
from shared.failures.models import Failure
from shared.messages.models import Envelope
from shared.messages.ports import Payload
from shared.pickup.models import PickupState, Source
from shared.pickup.ports import ItemContent, SourceItem, StoredPickupState
from shared.recovery.models import Flow
from shared.tokens import Version
from tests.twins.faults import Twin


class MemoryPickupStates(Twin):
    """Implements `shared.pickup.ports.PickupStates` (the twin of `TablePickupStates`).

    `down = True` (or `arm(...)`) makes every call raise StorageUnavailable, as a table that cannot
    be reached does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[str, str]] = {}
        self._versions = itertools.count(1)
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable("pickups: down")

    async def get(self, integration: str) -> StoredPickupState | None:
        async with self.call("get"):
            self._check()
            row = self._rows.get(integration)
            return None if row is None else StoredPickupState(PickupState.model_validate_json(row[0]), Version(row[1]))

    async def create(self, integration: str, state: PickupState) -> Version:
        async with self.call("create"):
            self._check()
            if integration in self._rows:
                raise ConcurrencyConflict(f"pickups: {integration} exists")
            return self._write(integration, state)

    async def replace(self, integration: str, state: PickupState, *, version: Version) -> Version:
        async with self.call("replace"):
            self._check()
            row = self._rows.get(integration)
            if row is None or row[1] != version:
                raise ConcurrencyConflict(f"pickups: {integration} changed")
            return self._write(integration, state)

    def _write(self, integration: str, state: PickupState) -> Version:
        version = str(next(self._versions))
        self._rows[integration] = (state.model_dump_json(), version)
        return Version(version)

    def state(self, integration: str) -> PickupState:
        return PickupState.model_validate_json(self._rows[integration][0])


class MemorySeenItems(Twin):
    """Implements `shared.pickup.ports.SeenItems` (the twin of `TableSeenItems`); `down` as above."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], tuple[datetime, str]] = {}
        self.down = False

    async def picked_at(self, integration: str, key: str) -> datetime | None:
        async with self.call("picked_at"):
            if self.down:
                raise StorageUnavailable("pickupseen: down")
            found = self.items.get((integration, key))
            return None if found is None else found[0]

    async def remember(self, integration: str, key: str, *, message_id: str, at: datetime) -> None:
        async with self.call("remember"):
            if self.down:
                raise StorageUnavailable("pickupseen: down")
            self.items[(integration, key)] = (at, message_id)

    async def forget_before(self, integration: str, cutoff: datetime, *, limit: int) -> int:
        async with self.call("forget_before"):
            if self.down:
                raise StorageUnavailable("pickupseen: down")
            old = [k for k, (at, _) in self.items.items() if k[0] == integration and at < cutoff][:limit]
            for key in old:
                del self.items[key]
            return len(old)


@dataclass
class Entry:
    name: str
    data: bytes
    version: int = 1
    locked: bool = False


class MemorySource:
    """A source in memory. `fail(op, error, times)` scripts failures of `list`, `read`, `remove` or `open`."""

    def __init__(self, *, rereadable: bool = True, target: str = "memory") -> None:
        self.rereadable = rereadable
        self.target = target
        self.entries: dict[str, Entry] = {}
        self.removed: list[str] = []
        self.given_back: list[str] = []
        self.reads = 0
        self._failures: dict[str, deque[PickupError]] = {}
        self.opened = 0
        self.closed = 0

    def put(self, name: str, data: bytes) -> None:
        existing = self.entries.get(name)
        self.entries[name] = Entry(name, data, version=existing.version + 1 if existing else 1)

    def fail(self, operation: str, error: PickupError, times: int = 1) -> None:
        self._failures.setdefault(operation, deque()).extend([error] * times)

    def _maybe_fail(self, operation: str) -> None:
        queued = self._failures.get(operation)
        if queued:
            raise queued.popleft()

    async def open(self) -> None:
        self._maybe_fail("open")
        self.opened += 1

    async def list(self, limit: int) -> list[SourceItem]:
        self._maybe_fail("list")
        found = []
        for entry in sorted(self.entries.values(), key=lambda e: e.name):
            if entry.locked:
                continue
            if not self.rereadable:
                entry.locked = True
            found.append(SourceItem(f"{entry.name}\n{entry.version}", entry.name, len(entry.data), entry.name))
            if len(found) >= limit:
                break
        return found

    async def read(self, item: SourceItem) -> ItemContent:
        self._maybe_fail("read")
        self.reads += 1
        entry = self.entries[str(item.handle)]
        return ItemContent(entry.data, None, f"{entry.name}\n{entry.version}", {})

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        self._maybe_fail("remove")
        name = str(item.handle)
        if name in self.entries:
            del self.entries[name]
            self.removed.append(name)

    async def give_back(self, item: SourceItem) -> None:
        name = str(item.handle)
        self.given_back.append(name)
        if name in self.entries:
            self.entries[name].locked = False

    async def close(self) -> None:
        self.closed += 1


@dataclass
class MemoryReaders:
    """Implements `shared.pickup.ports.SourceReaders`: the same `MemorySource` for every source."""

    source: MemorySource

    def reader_for(self, integration: str, source: Source) -> MemorySource:
        return self.source

    async def aclose(self) -> None:
        return None


# --- the stores around the runner ---------------------------------------------------------------


class DictIntegrations:
    """Implements `shared.config.ports.IntegrationStore` over a dict."""

    def __init__(self, *configs: IntegrationConfig) -> None:
        self.configs = {config.id: config for config in configs}

    async def get(self, integration_id: str) -> IntegrationConfig | None:
        return self.configs.get(integration_id)

    async def put(self, config: IntegrationConfig) -> bool:
        created = config.id not in self.configs
        self.configs[config.id] = config
        return created

    async def delete(self, integration_id: str) -> bool:
        return self.configs.pop(integration_id, None) is not None

    async def list(self) -> AsyncIterator[IntegrationConfig]:
        for config in list(self.configs.values()):
            yield config


@dataclass
class ListQueue:
    """Implements `shared.messages.ports.MessageQueue`: what was sent, in order; `down` makes sends fail."""

    name: str = "inbound"
    sent: list[str] = field(default_factory=list)
    down: bool = False
    waiting: int = 0

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        if self.down:
            raise StorageUnavailable("inbound: down")
        self.sent.append(text)

    async def depth(self) -> int:
        if self.down:
            raise StorageUnavailable("inbound: down")
        return self.waiting + len(self.sent)

    def envelopes(self) -> list[Envelope]:
        return [Envelope.model_validate_json(text) for text in self.sent]


class DictPayloads:
    """Implements `shared.messages.ports.PayloadStore` over a dict."""

    def __init__(self) -> None:
        self.blobs: dict[str, Payload] = {}

    async def put(self, ref: str, data: bytes, *, content_type: str | None) -> str:
        self.blobs[ref] = Payload(data, content_type)
        return ref

    async def get(self, ref: str) -> Payload | None:
        return self.blobs.get(ref)

    async def delete(self, ref: str) -> bool:
        return self.blobs.pop(ref, None) is not None

    async def delete_many(self, refs: Sequence[str]) -> list[StorageError | None]:
        return [None for ref in refs if await self.delete(ref) or True]

    async def names_older_than(self, cutoff: datetime, *, limit: int) -> list[str]:
        return []


@dataclass
class ListParker:
    """Implements `shared.recovery.ports.Parking`: what was parked; `down` makes parking fail."""

    parked: list[tuple[Envelope, str]] = field(default_factory=list)
    down: bool = False

    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        if self.down:
            raise StorageUnavailable("recovery: down")
        self.parked.append((envelope, reason))

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        raise AssertionError("pickup parks envelopes only")


@dataclass
class ListFailures:
    """Implements `shared.failures.ports.FailureSink`."""

    added: list[Failure] = field(default_factory=list)
    down: bool = False

    async def add(self, failure: Failure) -> Failure:
        if self.down:
            raise StorageUnavailable("failures: down")
        self.added.append(failure)
        return failure
