"""Integration configs in the `integrations` table: one row per integration, config as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.config.models import IntegrationConfig
from shared.errors import ConcurrencyConflict
from shared.storage.cursors import version_of
from shared.storage.tables import Entity, Table, check_entity_limits
from shared.values import utc_now

#: All configs share one partition: listing them is a single-partition query, and there are few.
CONFIG_PARTITION = "config"


class TableIntegrationStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def get(self, integration_id: str) -> IntegrationConfig | None:
        row = await self._table.get(CONFIG_PARTITION, integration_id)
        return None if row is None else _config_of(row)

    async def put(self, config: IntegrationConfig) -> bool:
        """Store the config; True when it did not exist before. EntityTooLarge, before any write, if it cannot fit."""
        row = _row_of(config)
        check_entity_limits(row)
        try:
            await self._table.insert(row)
            return True
        except ConcurrencyConflict:
            await self._table.upsert(row)
            return False

    async def delete(self, integration_id: str) -> bool:
        """True if the config existed. Read first: Azurite answers 204 for deleting a missing row."""
        row = await self._table.get(CONFIG_PARTITION, integration_id)
        if row is None:
            return False
        try:
            return await self._table.delete(CONFIG_PARTITION, integration_id, etag=version_of(row))
        except ConcurrencyConflict:
            # Changed under us by a concurrent PUT: it still existed, and the newest write wins.
            return True

    async def list(self) -> AsyncIterator[IntegrationConfig]:
        async for row in self._table.query("PartitionKey eq @pk", {"pk": CONFIG_PARTITION}):
            yield _config_of(row)


def _row_of(config: IntegrationConfig) -> Entity:
    return {
        "PartitionKey": CONFIG_PARTITION,
        "RowKey": config.id,
        "Name": config.name,
        "Config": config.model_dump_json(),
        "UpdatedAt": utc_now(),
    }


def _config_of(row: Entity) -> IntegrationConfig:
    return IntegrationConfig.model_validate_json(row["Config"])
