"""The last recovery sweep's result, in table `recoverystate` (one row: PK "sweep", RK "last")."""

from __future__ import annotations

from shared.recovery.models import SweepResult
from shared.storage.tables import Table

_PARTITION, _LAST = "sweep", "last"


class TableSweepState:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def last(self) -> SweepResult | None:
        row = await self._table.get(_PARTITION, _LAST)
        return None if row is None else SweepResult.model_validate_json(row["Result"])

    async def remember(self, result: SweepResult) -> None:
        await self._table.upsert({"PartitionKey": _PARTITION, "RowKey": _LAST, "Result": result.model_dump_json()})
