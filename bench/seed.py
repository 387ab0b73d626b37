"""Many failure rows, fast: built like the engine builds them, written in table transactions of 100.

Failures are one second apart, newest `end - 1 s`, so a job created at `end` selects them
all and a one-hour window in the middle holds 3,600 of them. Reasons come from a few
templates (each its own failure group) with their numbers varying; about 1 % contain the
rare word `RARE_WORD`, for the `q` filter. Payload blobs are uploaded for every
`blob_every`-th failure only (100,000 uploads would take longer than the benchmark itself);
the others have a body_ref whose blob does not exist, which the delete job still deletes.
A resend delivers the content, so the retry-until-delivered benchmark seeds a blob for every one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.harness import azure_stores, bounded_gather
from shared.failures.models import FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import AttemptRecord, Envelope
from shared.services import Services
from shared.storage.failure_rows import failure_to_row
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Entity

RARE_WORD = "quarantined"
#: (weight, origin, status, reason template). Weights add up to 100; the last is the rare one.
TEMPLATES: list[tuple[int, FailureOrigin, int | None, str]] = [
    (40, FailureOrigin.ENGINE, 503, "HTTP 503 from erp: service unavailable (gave up after 3 engine runs, order {n})"),
    (25, FailureOrigin.ENDPOINT, 400, "HTTP 400 from erp: field 'sku' is required (line {n})"),
    (15, FailureOrigin.ENDPOINT, 404, "HTTP 404 from erp: customer {n} does not exist"),
    (10, FailureOrigin.ENDPOINT, 422, "HTTP 422 from erp: quantity {n} exceeds the order limit"),
    (9, FailureOrigin.ENDPOINT, 409, "HTTP 409 from erp: order {n} is locked by another user"),
    (1, FailureOrigin.ENDPOINT, 403, "HTTP 403 from erp: account " + RARE_WORD + " by compliance (case {n})"),
]
#: Share of the failures in the group the `group` filter benchmark uses (the 10 % template).
GROUP_TEMPLATE = 3
SEED_CONCURRENCY = 4


@dataclass(frozen=True)
class Seeded:
    integration: str
    count: int
    first: datetime
    last: datetime
    #: The group of each template, by template number.
    groups: dict[int, str]
    blobs: int


def _template_of(index: int) -> int:
    slot = (index * 37) % 100  # spread the templates evenly through time
    for number, (weight, *_rest) in enumerate(TEMPLATES):
        if slot < weight:
            return number
        slot -= weight
    raise AssertionError("weights add up to 100")


def failure_rows(integration: str, count: int, *, end: datetime, prefix: str = "") -> Iterator[tuple[Entity, int, str]]:
    """(row, template number, group) for `count` failures, oldest first."""
    for index in range(count):
        failed_at = end - timedelta(seconds=count - index)
        number = _template_of(index)
        _, origin, status, template = TEMPLATES[number]
        envelope = Envelope(
            id=f"{prefix}m{index:07d}",
            integration=integration,
            sender="webshop",
            receiver="erp",
            content_type="application/json",
            body_text="{}",
            received_at=failed_at - timedelta(seconds=3),
        )
        history = [
            AttemptRecord(
                at=failed_at,
                engine_attempt=1,
                endpoint_attempt=n,
                target="http://erp.example/orders",
                status_code=status,
                outcome="permanent",
                duration_ms=12.5,
            )  # fmt: skip
            for n in (1, 2)
        ]
        failure = new_failure(
            envelope,
            origin=origin,
            reason=template.format(n=index),
            now=failed_at,
            body_ref=envelope.id,
            status_code=status,
            attempts=2,
            history=history,
        )
        yield failure_to_row(failure), number, failure.group


async def seed_failures(
    services: Services,
    integration: str,
    count: int,
    *,
    end: datetime,
    blob_every: int = 100,
    prefix: str = "",
    rebuild_summary: bool = True,
    blob_concurrency: int = 16,
) -> Seeded:
    """Write `count` failures of `integration` in transactions of 100, a few at a time, then recount.

    Rows and blobs are written as they are built, a few transactions' worth at a time, so memory
    stays flat however many are seeded.
    """
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)
    await table.ensure()
    groups: dict[int, str] = {}
    blob_refs: list[str] = []
    blobs = 0
    batches: list[list[BatchOperation]] = []
    batch: list[BatchOperation] = []

    async def submit(operations: list[BatchOperation]) -> None:
        await table.transact(operations)

    async def upload(ref: str) -> None:
        await services.stores.payloads.put(ref, b"{}", content_type="application/json")

    async def flush() -> None:
        nonlocal batches, blob_refs, blobs
        await bounded_gather(batches, submit, concurrency=SEED_CONCURRENCY)
        await bounded_gather(blob_refs, upload, concurrency=blob_concurrency)
        blobs += len(blob_refs)
        batches, blob_refs = [], []

    for index, (row, number, group) in enumerate(failure_rows(integration, count, end=end, prefix=prefix)):
        groups.setdefault(number, group)
        if blob_every and index % blob_every == 0:
            blob_refs.append(str(row["BodyRef"]))
        batch.append(BatchOperation.create(row))
        if len(batch) == MAX_BATCH_OPERATIONS:
            batches.append(batch)
            batch = []
        if len(batches) == SEED_CONCURRENCY * 4:
            await flush()
    if batch:
        batches.append(batch)
    await flush()
    if rebuild_summary:
        await services.stores.failures.rebuild_summary(integration)
    return Seeded(
        integration=integration,
        count=count,
        first=end - timedelta(seconds=count),
        last=end - timedelta(seconds=1),
        groups=groups,
        blobs=blobs,
    )
