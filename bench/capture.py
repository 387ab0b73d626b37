"""Failure capture cost: ms per message the receiver rejects with 400, against raw Azurite.

The engine processes the messages one after another (`process_message`, as the queue
trigger calls it; no queue work, so only the capture is timed beside the delivery): the HTTP
attempt, then the content blob, the failure row and the group counter (an ETag'd
read-modify-write of one summary shard). The same sequence against a receiver answering 200
is timed too, so the capture's own share is visible.

Raw baseline: the same number of failure rows inserted one by one with the SDK, each with a
1 KiB blob upload (one table insert + one blob upload per message), sequentially.
"""

from __future__ import annotations

import contextlib
import uuid

from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import ContainerClient

from bench.engine_throughput import envelope_text
from bench.harness import RAW_SDK, Result, Stopwatch, azure_stores, phase
from bench.receiver import ReceiverProcess
from shared.config.models import IntegrationConfig
from shared.delivery.engine import Delivered, FailureRecorded
from shared.failures.models import FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from shared.services import Services
from shared.storage.failure_rows import failure_to_row
from shared.values import utc_now

INTEGRATION = "bench"
#: The same messages to a receiver that answers 200, for the delivery's share of the time.
DELIVERED = "benchok"
BODY = b'{"order": 1, "note": "' + b"x" * 1000 + b'"}'


async def _per_message_ms(services: Services, integration: str, count: int, expected: type) -> float:
    watch = Stopwatch()
    for number in range(count):
        text = envelope_text(number, integration)
        outcome = await services.engine.process_message(text.encode(), queue_message_id=str(number))
        if not isinstance(outcome, expected):
            raise AssertionError(f"expected {expected.__name__}, got {outcome!r}")
    return watch.elapsed_s * 1000 / count


async def _raw_ms(services: Services, connection_string: str, count: int) -> float:
    table = TableClient.from_connection_string(
        connection_string, azure_stores(services).names.failures + "raw", **RAW_SDK
    )
    container = ContainerClient.from_connection_string(
        connection_string, azure_stores(services).names.payloads + "raw", **RAW_SDK
    )
    with contextlib.suppress(ResourceExistsError):
        await table.create_table()
    with contextlib.suppress(ResourceExistsError):
        await container.create_container()
    rows = []
    for number in range(count):
        envelope = Envelope(id=uuid.uuid4().hex, integration=INTEGRATION, body_text=BODY.decode(), sender="webshop")
        failure = new_failure(
            envelope, origin=FailureOrigin.ENDPOINT, reason=f"HTTP 400 from erp: order {number} rejected",
            now=utc_now(), body_ref=envelope.id, status_code=400, attempts=1,
        )  # fmt: skip
        rows.append(failure_to_row(failure))
    settings = ContentSettings(content_type="application/json")
    try:
        watch = Stopwatch()
        for row in rows:
            await container.upload_blob(str(row["BodyRef"]), BODY, overwrite=True, content_settings=settings)
            await table.create_entity(row)
        return watch.elapsed_s * 1000 / count
    finally:
        await table.close()
        await container.close()


async def bench_capture(count: int) -> list[Result]:
    with ReceiverProcess() as receiver:
        async with phase("failure capture") as (azurite, services):
            for integration, path in ((INTEGRATION, "/reject"), (DELIVERED, "/ok")):
                endpoint = {"kind": "http", "url": receiver.url(path)}
                config = {"id": integration, "name": integration, "endpoint": endpoint}
                await services.stores.integrations.put(IntegrationConfig.model_validate(config))
            # Warm up connections and tables, so the first message does not pay for creating them.
            await _per_message_ms(services, INTEGRATION, 5, FailureRecorded)
            await _per_message_ms(services, DELIVERED, 5, Delivered)
            raw_ms = await _raw_ms(services, azurite.connection_string, count)
            captured_ms = await _per_message_ms(services, INTEGRATION, count, FailureRecorded)
            delivered_ms = await _per_message_ms(services, DELIVERED, count, Delivered)
    result = Result(
        benchmark="failure capture",
        case="receiver answers 400",
        value=captured_ms,
        unit="ms/message",
        raw=raw_ms,
        raw_what=f"SDK: one 1 KiB blob upload + one table insert per message, sequential; {count:,} messages",
        higher_is_better=False,
        extra={"messages": count, "same messages delivered (200), ms": round(delivered_ms, 2)},
    )
    result.notes.append(
        f"capture's own share: {captured_ms - delivered_ms:.1f} ms/message (400 path minus the 200 path)"
    )
    print(f"    {result.line()}", flush=True)
    return [result]
