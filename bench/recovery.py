"""Recovery sweep reinsert rate: messages/s moved from the recovery queue back to `inbound`.

Park `count` envelopes (the Parker, as ingest or the engine would, with no park delay), then
run one `sweeper.sweep()` whose batch size covers them all (RECOVERY_BATCH_SIZE = count;
MAX_INBOUND_DEPTH above count, so the sweep's backpressure does not pause it; the
benchmark is about the move itself). The sweep works one message at a time: receive 32
under a lease, per message send to `inbound` and then delete from `recovery`.

Raw baseline, in its own fresh Azurite (another `count` deletes in the same one would run
into Azurite's garbage-collection stalls): the same number of parked texts on a queue,
moved with the SDK the same way (receive 32, per message send + delete, sequentially).
"""

from __future__ import annotations

import contextlib

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.engine_throughput import envelope_text
from bench.harness import RAW_SDK, Result, Stopwatch, azure_stores, bounded_gather, phase, rate
from shared.messages.models import Envelope
from shared.recovery.models import ParkedMessage
from shared.values import utc_now

PARK_CONCURRENCY = 16


def _envelope(number: int) -> Envelope:
    return Envelope.model_validate_json(envelope_text(number, "orders"))


async def _raw(count: int) -> float:
    async with phase("recovery raw baseline") as (azurite, services):
        source = QueueClient.from_connection_string(
            azurite.connection_string, "rawrecovery", message_encode_policy=TextBase64EncodePolicy(), **RAW_SDK
        )
        target = QueueClient.from_connection_string(
            azurite.connection_string,
            azure_stores(services).names.inbound,
            message_encode_policy=TextBase64EncodePolicy(),
            **RAW_SDK,
        )
        try:
            for client in (source, target):
                with contextlib.suppress(ResourceExistsError):
                    await client.create_queue()

            async def park(number: int) -> None:
                envelope = _envelope(number)
                text = envelope.model_dump_json(exclude_none=True)
                parked = ParkedMessage(flow="inbound", text=text, reason="bench", parked_at=utc_now())
                await source.send_message(parked.model_dump_json(), time_to_live=-1)

            await bounded_gather(range(count), park, concurrency=PARK_CONCURRENCY)
            moved = 0
            watch = Stopwatch()
            while moved < count:
                received = source.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60)
                batch = [message async for message in received]
                if not batch:
                    break
                for message in batch:
                    await target.send_message(str(message.content), time_to_live=-1)
                    with contextlib.suppress(ResourceNotFoundError):
                        await source.delete_message(message.id, message.pop_receipt)
                    moved += 1
            return rate(moved, watch.elapsed_s)
        finally:
            await source.close()
            await target.close()


async def bench_recovery(count: int) -> list[Result]:
    raw = await _raw(count)
    print(f"    raw receive+send+delete: {raw:,.1f} msg/s", flush=True)
    settings = {
        "RECOVERY_PARK_DELAY_S": "0",
        "RECOVERY_BATCH_SIZE": str(count),
        "MAX_INBOUND_DEPTH": str(count + 1000),
    }
    async with phase("recovery sweep", **settings) as (_, services):

        async def park(number: int) -> None:
            await services.parker.park_envelope(_envelope(number), "bench: inbound unreachable")

        await bounded_gather(range(count), park, concurrency=PARK_CONCURRENCY)
        watch = Stopwatch()
        swept = await services.sweeper.sweep(trigger="manual")
        seconds = watch.elapsed_s
    if swept.reinserted != count:
        raise AssertionError(f"sweep reinserted {swept.reinserted} of {count}: {swept.model_dump_json()}")
    result = Result(
        benchmark="recovery sweep",
        case=f"{count:,} parked messages, one sweep",
        value=rate(swept.reinserted, seconds),
        unit="msg/s",
        raw=raw,
        raw_what=f"SDK: receive 32, then per message send + delete, sequential; {count:,} messages",
        extra={"seconds": round(seconds, 1), "reinserted": swept.reinserted},
    )
    print(f"    {result.line()}", flush=True)
    return [result]
