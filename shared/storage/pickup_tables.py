"""Pickup state in table `pickups` (one row per integration, ETag'd: the lease), picked items in `pickupseen`.

`pickups`: PK = integration, RK = "state", the state as JSON plus a few columns to read in Storage
Explorer. A lease is an ETag'd replace of that row, so of two instances only one wins it.
`pickupseen`: PK = integration, RK = SHA-256 of the item's key (a key holds names with characters a
RowKey may not), `PickedAt` for the window, the envelope id, and the start of the key for people.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from shared.errors import ConcurrencyConflict
from shared.pickup.models import PickupState
from shared.pickup.ports import StoredPickupState
from shared.storage.cursors import version_of
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Entity, Table
from shared.tokens import Version

_STATE = "state"
#: How much of an item's key a seen row shows (the RowKey is its hash).
_KEY_SHOWN_CHARS = 1000


class TablePickupStates:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def get(self, integration: str) -> StoredPickupState | None:
        row = await self._table.get(integration, _STATE)
        if row is None:
            return None
        return StoredPickupState(PickupState.model_validate_json(row["State"]), version_of(row))

    async def create(self, integration: str, state: PickupState) -> Version:
        return Version(await self._table.insert(_row(integration, state)))

    async def replace(self, integration: str, state: PickupState, *, version: Version) -> Version:
        return Version(await self._table.update(_row(integration, state), etag=version))


def _row(integration: str, state: PickupState) -> Entity:
    return {
        "PartitionKey": integration,
        "RowKey": _STATE,
        "State": state.model_dump_json(),
        "LastOutcome": state.last_outcome.value if state.last_outcome else "",
        "LeaseOwner": state.lease_owner or "",
        "LeaseUntil": state.lease_until,
    }


def seen_row_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TableSeenItems:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def picked_at(self, integration: str, key: str) -> datetime | None:
        row = await self._table.get(integration, seen_row_key(key))
        if row is None:
            return None
        at: datetime = row["PickedAt"]
        return at

    async def remember(self, integration: str, key: str, *, message_id: str, at: datetime) -> None:
        await self._table.upsert(
            {
                "PartitionKey": integration,
                "RowKey": seen_row_key(key),
                "PickedAt": at,
                "MessageId": message_id,
                "Key": key[:_KEY_SHOWN_CHARS],
            }
        )

    async def forget_before(self, integration: str, cutoff: datetime, *, limit: int) -> int:
        page = await self._table.query_page(
            "PartitionKey eq @pk and PickedAt lt @cutoff",
            {"pk": integration, "cutoff": cutoff},
            page_size=min(limit, MAX_BATCH_OPERATIONS),
            select=["PartitionKey", "RowKey"],
        )
        if not page.items:
            return 0
        # One partition, at most 100: one transaction, each delete conditional on the row as read, so
        # an item picked again meanwhile (a newer PickedAt) is not forgotten; then nothing goes this time.
        try:
            await self._table.transact(
                BatchOperation.delete(integration, row["RowKey"], etag=row["_etag"]) for row in page.items
            )
        except ConcurrencyConflict:
            return 0
        return len(page.items)
