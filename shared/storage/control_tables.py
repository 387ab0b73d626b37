"""Control state in `control`, held messages in `held`, rate-limit slots in `ratelimit`.

`control`: PK = "state", RK = integration (every state in one partition: the timer reads them all with
one query), the state as JSON plus a few columns for Storage Explorer; every change is an ETag'd replace.
`held`: PK = integration, RK = the message's arrival position (received time, then its id), so a
partition query returns the hold oldest first; the queue text in `Text0`, `Text1`, … (a property holds
at most 64 KiB as UTF-16; the text is at most ~48 KiB because larger bodies are claim-checked).
`ratelimit`: PK = integration, RK = slot number modulo `RATE_RING` (a ring of rows reused forever, so
nothing needs purging), `Slot` and `Claimed`; a claim is an ETag'd read-modify-write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.control.models import ControlState
from shared.control.ports import HeldItem, StoredControlState
from shared.errors import ConcurrencyConflict
from shared.storage.cursors import version_of
from shared.storage.tables import Entity, Table
from shared.tokens import Version

_STATE_PARTITION = "state"
#: Characters per text property: 30,000 UTF-16 characters stay under a property's 64 KiB.
_TEXT_CHUNK_CHARS = 30_000
#: Rows per integration in `ratelimit`; claims look at most a few slots ahead, far fewer than this.
RATE_RING = 64
_MAX_CLAIM_CONFLICTS = 16


class TableControlStates:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def get(self, integration: str) -> StoredControlState | None:
        row = await self._table.get(_STATE_PARTITION, integration)
        return None if row is None else _stored(row)

    async def create(self, integration: str, state: ControlState) -> Version:
        return Version(await self._table.insert(_state_row(integration, state)))

    async def replace(self, integration: str, state: ControlState, *, version: Version) -> Version:
        return Version(await self._table.update(_state_row(integration, state), etag=version))

    async def all(self) -> AsyncIterator[tuple[str, StoredControlState]]:
        async for row in self._table.query("PartitionKey eq @pk", {"pk": _STATE_PARTITION}):
            yield str(row["RowKey"]), _stored(row)


def _stored(row: Entity) -> StoredControlState:
    return StoredControlState(ControlState.model_validate_json(row["State"]), version_of(row))


def _state_row(integration: str, state: ControlState) -> Entity:
    return {
        "PartitionKey": _STATE_PARTITION,
        "RowKey": integration,
        "State": state.model_dump_json(),
        "Paused": state.paused is not None,
        "Holding": state.holding,
        "Breaker": state.breaker.phase.value,
    }


class TableHeldMessages:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def hold(self, integration: str, position: str, text: str) -> None:
        chunks = [text[i : i + _TEXT_CHUNK_CHARS] for i in range(0, len(text), _TEXT_CHUNK_CHARS)] or [""]
        row: Entity = {"PartitionKey": integration, "RowKey": position, "Chunks": len(chunks)}
        row.update({f"Text{i}": chunk for i, chunk in enumerate(chunks)})
        await self._table.upsert(row)

    async def oldest(self, integration: str, *, limit: int) -> list[HeldItem]:
        page = await self._table.query_page("PartitionKey eq @pk", {"pk": integration}, page_size=limit)
        return [_held(row) for row in page.items[:limit]]

    async def release(self, integration: str, item: HeldItem) -> bool:
        # Azurite answers 204 for deleting a row that is gone, even with an ETag: read first to know.
        row = await self._table.get(integration, item.position)
        if row is None or version_of(row) != item.version:
            return False
        try:
            return await self._table.delete(integration, item.position, etag=item.version)
        except ConcurrencyConflict:
            return False

    async def count(self, integration: str, *, limit: int) -> int:
        total = 0
        async for _ in self._table.query(
            "PartitionKey eq @pk", {"pk": integration}, page_size=min(1000, max(1, limit)), select=["RowKey"]
        ):
            total += 1
            if total >= limit:
                break
        return total


def _held(row: Entity) -> HeldItem:
    text = "".join(str(row.get(f"Text{i}", "")) for i in range(int(row.get("Chunks", 1))))
    return HeldItem(position=str(row["RowKey"]), text=text, version=version_of(row))


class TableRateSlots:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def claim(self, integration: str, slot: int, *, capacity: int, want: int) -> tuple[int, int]:
        row_key = f"{slot % RATE_RING:03d}"
        for _ in range(_MAX_CLAIM_CONFLICTS):
            row = await self._table.get(integration, row_key)
            try:
                if row is None:
                    taken = min(want, capacity)
                    await self._table.insert(_slot_row(integration, row_key, slot, taken))
                    return 0, taken
                stored_slot, claimed = int(row["Slot"]), int(row["Claimed"])
                if stored_slot > slot:
                    return capacity, 0
                if stored_slot < slot:
                    claimed = 0
                taken = min(want, capacity - claimed)
                if taken <= 0:
                    return capacity, 0
                await self._table.update(_slot_row(integration, row_key, slot, claimed + taken), etag=version_of(row))
                return claimed, taken
            except ConcurrencyConflict:
                continue
        # Contention this high means the slot is being emptied by others; this caller waits for the next.
        return capacity, 0


def _slot_row(integration: str, row_key: str, slot: int, claimed: int) -> Entity:
    return {"PartitionKey": integration, "RowKey": row_key, "Slot": slot, "Claimed": claimed}
