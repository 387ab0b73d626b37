"""The per-group failure counters in `failuresummary`: PK = integration, RK = "<group>-<shard>".

One counter per failure group (like failures: same origin, status and normalised reason), spread
over shards so many instances recording the same kind of failure at once do not serialise on one
ETag'd row. The overview and the groups panel add these rows up; neither ever scans the failures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.failures.models import Failure, FailureSummary
from shared.storage.tables import Entity

#: Counter rows per group, one picked at random per write; readers add them up. 16, not 4: with 24
#: failures of one group recorded at once (one host's queue batch), 4 shards lost 59 of 600 counter
#: writes to ETag contention after 8 tries, 16 lost none (Azurite, issue 15). Existing rows of any
#: shard are read and rebuilt alike, so the number may change.
SUMMARY_SHARDS = 16
_SAMPLE_REASON_CHARS = 500


@dataclass
class Tally:
    """A group's counter (one shard, or shards added up)."""

    origin: str
    status_code: int | None
    sample_reason: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, count: int, first: datetime | None, last: datetime | None) -> None:
        self.count += count
        if first is not None:
            self.first = first if self.first is None else min(self.first, first)
        if last is not None:
            self.last = last if self.last is None else max(self.last, last)

    def to_row(self, integration: str, group: str, shard: int) -> Entity:
        row: Entity = {
            "PartitionKey": integration,
            "RowKey": f"{group}-{shard}",
            "Group": group,
            "Count": self.count,
            "Origin": self.origin,
            "SampleReason": self.sample_reason[:_SAMPLE_REASON_CHARS],
        }
        optional = {"StatusCode": self.status_code, "FirstFailedAt": self.first, "LastFailedAt": self.last}
        row.update({key: value for key, value in optional.items() if value is not None})
        return row

    @classmethod
    def of_row(cls, row: Entity) -> Tally:
        tally = cls(origin=row["Origin"], status_code=row.get("StatusCode"), sample_reason=row.get("SampleReason", ""))
        tally.add(int(row.get("Count", 0)), row.get("FirstFailedAt"), row.get("LastFailedAt"))
        return tally

    @classmethod
    def of_failure(cls, failure: Failure) -> Tally:
        return cls(origin=failure.origin.value, status_code=failure.status_code, sample_reason=failure.reason)


def merge(groups: dict[str, Tally], group: str, tally: Tally) -> None:
    known = groups.get(group)
    if known is None:
        groups[group] = tally
    else:
        known.add(tally.count, tally.first, tally.last)


def summary_of(integration: str, groups: Iterable[Tally]) -> FailureSummary:
    count, first, last = 0, None, None
    by_origin: dict[str, int] = {}
    for tally in groups:
        if tally.count <= 0:
            continue
        count += tally.count
        by_origin[tally.origin] = by_origin.get(tally.origin, 0) + tally.count
        first = tally.first if first is None or (tally.first is not None and tally.first < first) else first
        last = tally.last if last is None or (tally.last is not None and tally.last > last) else last
    return FailureSummary(
        integration=integration,
        count=count,
        first_failed_at=first if count else None,
        last_failed_at=last if count else None,
        by_origin=dict(sorted(by_origin.items())),
    )
