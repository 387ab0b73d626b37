"""Retry jobs' settle counters in the `jobcounters` table: PK = integration, RK = `<job id>|<shard>`.

A shard has one writer (shared/jobs/settle.py), which replaces its row with its running totals, so no
write ever conditions on another's. A job's shards are one key range of its integration's partition,
and a list of jobs is one range from the oldest to the newest of them (job ids sort newest first).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.jobs.ports import SettleTally
from shared.storage.tables import Table


class TableSettleCounts:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def save_shard(self, integration: str, job_id: str, shard: str, tally: SettleTally) -> None:
        await self._table.upsert(
            {
                "PartitionKey": integration,
                "RowKey": f"{job_id}|{shard}",
                "JobId": job_id,
                "Delivered": tally.delivered,
                "FailedAgain": tally.failed_again,
            }
        )

    async def totals(self, integration: str, job_ids: Sequence[str]) -> dict[str, SettleTally]:
        if not job_ids:
            return {}
        wanted = set(job_ids)
        # '|' sorts after every character of a job id, '}' right after '|'.
        parameters = {"pk": integration, "low": f"{min(wanted)}|", "high": f"{max(wanted)}|}}"}
        totals: dict[str, SettleTally] = {}
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        async for row in self._table.query(query, parameters, page_size=1000):
            job_id = str(row["JobId"])
            if job_id in wanted:
                shard = SettleTally(int(row.get("Delivered", 0)), int(row.get("FailedAgain", 0)))
                totals[job_id] = totals.get(job_id, SettleTally()) + shard
        return totals
