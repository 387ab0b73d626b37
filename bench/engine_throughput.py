"""Engine throughput, messages/s: the success path, and with 10 % transient failures.

The engine runs in-process the way the Functions host drives it (host.json `extensions.queues`):
receive up to batchSize = 16 messages from `inbound` under a lease, keep at most
batchSize + newBatchThreshold = 24 invocations running, fetch the next batch when 8 or
fewer are left, delete each message when its invocation succeeded. A producer sends the
messages at the same time (16 sends at a time), so `inbound` stays shallow. The receiver is
a real HTTP server on 127.0.0.1 in its own process (bench/receiver.py); in the transient
case it answers 503 to the first attempt of about 10 % of the messages, which the endpoint
retry (ENDPOINT_RETRY_BASE_DELAY_S = 0.01) repeats at once.

Raw baseline: the same producer and the same receive/delete loop at the same concurrency,
with no Rebound code in between (send + receive + delete of the same number of messages).
Each run gets its own fresh Azurite. Raw and the two engine cases alternate in ROUNDS short runs,
each figure summed over its runs: on a shared machine the load drifts over the minutes the
benchmark takes, and alternating lets each case see the same drift.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.harness import RAW_SDK, Result, Stopwatch, azure_stores, bounded_gather, phase, rate
from bench.receiver import ReceiverProcess
from shared.config.models import IntegrationConfig

BATCH_SIZE = 16
NEW_BATCH_THRESHOLD = 8
LEASE_S = 60
PRODUCER_CONCURRENCY = 16
INTEGRATION = "bench"
SETTINGS = {"ENDPOINT_RETRY_BASE_DELAY_S": "0.01", "ENDPOINT_RETRY_MAX_ATTEMPTS": "4"}

Handler = Callable[[bytes, str], Awaitable[None]]


def envelope_text(number: int, integration: str = INTEGRATION) -> str:
    body = json.dumps({"order": number, "lines": [{"sku": f"SKU-{number % 97}", "qty": 1 + number % 5}]})
    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "integration": integration,
            "sender": "webshop",
            "receiver": "erp",
            "content_type": "application/json",
            "body_text": body,
        }  # fmt: skip
    )


async def produce(client: QueueClient, count: int) -> None:
    async def send(number: int) -> None:
        await client.send_message(envelope_text(number), time_to_live=-1)

    await bounded_gather(range(count), send, concurrency=PRODUCER_CONCURRENCY)


async def host_loop(client: QueueClient, total: int, handle: Handler) -> None:
    """Receive in batches of 16, at most 24 running, delete on success, until `total` are done."""
    in_flight: set[asyncio.Task[None]] = set()
    done = 0

    async def invoke(message: QueueMessage) -> None:
        await handle(base64.b64decode(str(message.content)), message.id)
        with contextlib.suppress(ResourceNotFoundError):  # DESIGN.md 10: a 404 right after receive counts as done
            await client.delete_message(message.id, message.pop_receipt)

    while done < total:
        if len(in_flight) <= NEW_BATCH_THRESHOLD:
            batch = [
                message
                async for message in client.receive_messages(
                    messages_per_page=BATCH_SIZE, max_messages=BATCH_SIZE, visibility_timeout=LEASE_S
                )
            ]
            in_flight.update(asyncio.create_task(invoke(message)) for message in batch)
            if not in_flight:
                await asyncio.sleep(0.02)  # nothing yet: the producer is behind
                continue
            if len(in_flight) <= NEW_BATCH_THRESHOLD and batch:
                continue
        finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            task.result()  # an invocation that raised is a benchmark bug, not a figure
        done += len(finished)


async def _run(connection_string: str, queue: str, count: int, handle: Handler) -> float:
    """Messages/s from the first send to the last delete."""
    producer = QueueClient.from_connection_string(
        connection_string, queue, message_encode_policy=TextBase64EncodePolicy(), **RAW_SDK
    )
    consumer = QueueClient.from_connection_string(connection_string, queue, **RAW_SDK)
    try:
        with contextlib.suppress(ResourceExistsError):
            await producer.create_queue()
        watch = Stopwatch()
        await asyncio.gather(produce(producer, count), host_loop(consumer, count, handle))
        return rate(count, watch.elapsed_s)
    finally:
        await producer.close()
        await consumer.close()


async def _nothing(body: bytes, message_id: str) -> None:
    return None


async def raw_send_receive_delete(connection_string: str, queue: str, count: int) -> float:
    """The raw baseline: messages/s for the producer and the host loop with no processing."""
    return await _run(connection_string, queue, count, _nothing)


async def _engine_run(count: int, receiver: ReceiverProcess, path: str) -> tuple[float, Counter[str], dict[str, int]]:
    async with phase(f"engine, receiver {path}", **SETTINGS) as (azurite, services):
        config = {"id": INTEGRATION, "name": "Bench", "endpoint": {"kind": "http", "url": receiver.url(path)}}
        await services.stores.integrations.put(IntegrationConfig.model_validate(config))
        outcomes: Counter[str] = Counter()
        async with httpx.AsyncClient() as http:
            before = (await http.get(receiver.url("/stats"))).json()

            async def handle(body: bytes, message_id: str) -> None:
                outcome = await services.engine.process_message(body, queue_message_id=message_id)
                outcomes[type(outcome).__name__] += 1

            messages_per_s = await _run(azurite.connection_string, azure_stores(services).names.inbound, count, handle)
            after = (await http.get(receiver.url("/stats"))).json()
        stats = {key: int(after[key]) - int(before[key]) for key in ("requests", "transient")}
        return messages_per_s, outcomes, stats


#: Raw and engine runs alternate in this many rounds, each of count / ROUNDS messages.
ROUNDS = 3


async def _raw(count: int) -> float:
    async with phase("engine raw baseline") as (azurite, services):
        return await raw_send_receive_delete(azurite.connection_string, azure_stores(services).names.inbound, count)


async def bench_engine(count: int, *, rounds: int = ROUNDS) -> list[Result]:
    """Raw, success path and transient case in turn, `rounds` times over: on a machine shared with other
    work the load drifts over the minutes a run takes, and alternating short runs lets each case see
    the same drift. Each figure is its messages over its summed time."""
    per_round = max(1, count // rounds)
    cases = (("success path", "/ok"), ("10 % transient (503 once)", "/flaky/10"))
    seconds: dict[str, float] = {"raw": 0.0}
    stats: dict[str, dict[str, int]] = {case: {"requests": 0, "transient": 0} for case, _ in cases}
    with ReceiverProcess() as receiver:
        for number in range(1, rounds + 1):
            raw = await _raw(per_round)
            seconds["raw"] += per_round / raw
            print(f"    round {number}/{rounds}: raw {raw:,.1f} msg/s", flush=True)
            for case, path in cases:
                messages_per_s, outcomes, counted = await _engine_run(per_round, receiver, path)
                if outcomes.get("Delivered", 0) != per_round:
                    raise AssertionError(f"engine {case}: expected {per_round} delivered, got {dict(outcomes)}")
                seconds[case] = seconds.get(case, 0.0) + per_round / messages_per_s
                for key in ("requests", "transient"):
                    stats[case][key] += counted[key]
                print(f"    round {number}/{rounds}: engine {case} {messages_per_s:,.1f} msg/s", flush=True)
    total = per_round * rounds
    raw_per_s = total / seconds["raw"]
    raw_what = (
        f"SDK: send (16 at a time) + receive 16 + delete, at most 24 in flight; {total:,} messages, "
        f"in {rounds} runs alternating with the engine's"
    )
    results = []
    for case, _ in cases:
        result = Result(
            benchmark="engine throughput",
            case=case,
            value=total / seconds[case],
            unit="msg/s",
            raw=raw_per_s,
            raw_what=raw_what,
            extra={
                "messages": total,
                "rounds": rounds,
                "HTTP requests": stats[case]["requests"],
                "503 answered": stats[case]["transient"],
            },
        )
        print(f"    {result.line()}", flush=True)
        results.append(result)
    return results
