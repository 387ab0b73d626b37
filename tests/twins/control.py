"""Twins for control: the state per integration, the hold, and the rate-limit slots (the twins of
`TableControlStates`, `TableHeldMessages` and `TableRateSlots`)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from shared.control.models import ControlState
from shared.control.ports import HeldItem, StoredControlState
from shared.errors import ConcurrencyConflict
from shared.tokens import Version
from tests.twins.faults import Twin


class MemoryControlStates(Twin):
    """Implements `shared.control.ports.ControlStates`: a version per write, `ConcurrencyConflict` on a stale one."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[str, str]] = {}
        self._versions = itertools.count(1)

    async def get(self, integration: str) -> StoredControlState | None:
        async with self.call("get"):
            row = self._rows.get(integration)
            if row is None:
                return None
            return StoredControlState(ControlState.model_validate_json(row[0]), Version(row[1]))

    async def create(self, integration: str, state: ControlState) -> Version:
        async with self.call("create"):
            if integration in self._rows:
                raise ConcurrencyConflict(f"control: {integration} exists")
            return self._write(integration, state)

    async def replace(self, integration: str, state: ControlState, *, version: Version) -> Version:
        async with self.call("replace"):
            row = self._rows.get(integration)
            if row is None or row[1] != version:
                raise ConcurrencyConflict(f"control: {integration} changed")
            return self._write(integration, state)

    async def all(self) -> AsyncIterator[tuple[str, StoredControlState]]:
        async with self.call("all"):
            rows = sorted(self._rows.items())
        for integration, (text, version) in rows:
            yield integration, StoredControlState(ControlState.model_validate_json(text), Version(version))

    def _write(self, integration: str, state: ControlState) -> Version:
        version = str(next(self._versions))
        self._rows[integration] = (state.model_dump_json(), version)
        return Version(version)

    def state(self, integration: str) -> ControlState:
        """Affordance: the stored state (the default when there is none)."""
        row = self._rows.get(integration)
        return ControlState() if row is None else ControlState.model_validate_json(row[0])


class MemoryHeldMessages(Twin):
    """Implements `shared.control.ports.HeldMessages`. Affordance: `texts(integration)` in arrival order."""

    def __init__(self) -> None:
        super().__init__()
        self._held: dict[str, dict[str, tuple[str, str]]] = {}
        self._versions = itertools.count(1)

    async def hold(self, integration: str, position: str, text: str) -> None:
        async with self.call("hold"):
            self._held.setdefault(integration, {})[position] = (text, str(next(self._versions)))

    async def oldest(self, integration: str, *, limit: int) -> list[HeldItem]:
        async with self.call("oldest"):
            rows = sorted(self._held.get(integration, {}).items())[:limit]
            return [HeldItem(position, text, Version(version)) for position, (text, version) in rows]

    async def release(self, integration: str, item: HeldItem) -> bool:
        async with self.call("release"):
            rows = self._held.get(integration, {})
            row = rows.get(item.position)
            if row is None or row[1] != item.version:
                return False
            del rows[item.position]
            return True

    async def count(self, integration: str, *, limit: int) -> int:
        async with self.call("count"):
            return min(limit, len(self._held.get(integration, {})))

    def texts(self, integration: str) -> list[str]:
        return [text for _, (text, _) in sorted(self._held.get(integration, {}).items())]


class MemoryRateSlots(Twin):
    """Implements `shared.control.ports.RateSlots`. Affordance: `claimed(integration, slot)`."""

    def __init__(self) -> None:
        super().__init__()
        self._claimed: dict[tuple[str, int], int] = {}

    async def claim(self, integration: str, slot: int, *, capacity: int, want: int) -> tuple[int, int]:
        async with self.call("claim"):
            claimed = self._claimed.get((integration, slot), 0)
            taken = max(0, min(want, capacity - claimed))
            if taken == 0:
                return capacity, 0
            self._claimed[(integration, slot)] = claimed + taken
            return claimed, taken

    def claimed(self, integration: str, slot: int) -> int:
        return self._claimed.get((integration, slot), 0)
