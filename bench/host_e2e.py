"""End to end through the host, as a user runs it: ingest → `inbound` → engine → receiver.

Each phase gets a fresh host stack (bench/host_stack.py: Azurite, devhost started like
`make run` with the sample settings, the receiver in its own process) and one integration
whose endpoint is the receiver's /ok.

Throughput: N messages POSTed to ingest, 16 at a time, each with its own X-Message-Id (the
Idempotency-Key the receiver sees). Time from the start of the first POST to the first arrival
of the last distinct message at the receiver. Both ends read time.monotonic() (CLOCK_MONOTONIC,
one clock for all processes of the machine). Duplicates (a 200 for an id already delivered) are
counted, not hidden. Beside it, on the same Azurite in the same phase, before and again after
the host run, the raw baseline of bench/engine_throughput.py on a queue of its own: N messages
sent 16 at a time while a loop receives 16 at a time and deletes each (at most 24 in flight);
the ratio is to the mean of the two (the load of a shared machine drifts over a run). Between
runs, Azurite's garbage collection of the deleted bodies is let pass (`harness.wait_for_queue_gc`):
measured without that wait, a 46 s GC stall fell inside a 98 s host run.

Latency at a fixed offered load (50 and 100 msg/s): open-loop pacing, message i is POSTed at
t0 + i / rate whatever happened to the earlier ones (at most MAX_OUTSTANDING POSTs waiting; past
that the pace slips, and the achieved rate is reported). Latency = the receiver's first arrival
of the id − the client's monotonic time when its POST started. Raw baseline at the same pace,
same Azurite: the SDK send of each message (paced the same way) to the moment the receive loop
above gets it; it bounds what the queue hop alone costs on this machine.

Ingest is used like an upstream system would: a 503 (neither `inbound` nor the recovery flow
answered within STORAGE_TIMEOUT_S) is retried after its Retry-After with the same message id,
and a 202 that says `parked` is delivered once the recovery sweep reinserts it; both are counted
in the rows, and their time is in the figures. Devhost's CPU seconds and peak RSS over the
measured block come from psutil, read from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.engine_throughput import envelope_text, host_loop, raw_send_receive_delete
from bench.harness import RAW_SDK, Result, azure_stores, bounded_gather, percentile, rate, wait_for_queue_gc
from bench.host_stack import DevhostMeter, HostStack, host_stack, put_integration, receiver_stats

INTEGRATION = "bench"
POST_CONCURRENCY = 16
#: Open-loop pacing: POSTs allowed to wait for their answer before the pace slips.
MAX_OUTSTANDING = 256
#: No new delivery for this long while messages are still missing: the run is stuck, not slow. A message
#: ingest parked reaches `inbound` with the recovery sweep: RECOVERY_PARK_DELAY_S + one RECOVERY_SCHEDULE period.
STALL_TIMEOUT_S = 360.0
RAW_QUEUE = "rawbaseline"
#: An upstream system retries a 503 (both `inbound` and the recovery flow unreachable) this often.
MAX_POST_ATTEMPTS = 10
LATENCY_RATES = (50, 100)
#: Below this many deletes Azurite's GC sweep is short; the smoke test's tiny runs skip the wait.
GC_WAIT_MIN_DELETES = 500


@dataclass(frozen=True)
class Delivery:
    """What the receiver saw of a run."""

    distinct: int
    duplicates: int
    last_arrival: float


async def wait_for_deliveries(receiver: httpx.AsyncClient, expected: int, *, stall_timeout_s: float) -> Delivery:
    """Poll the receiver until `expected` distinct ids arrived; fail when nothing new arrives for too long."""
    seen, progress_at = -1, time.monotonic()
    while True:
        stats = await receiver_stats(receiver)
        if stats["distinct"] >= expected:
            return Delivery(int(stats["distinct"]), int(stats["duplicates"]), float(stats["last_arrival"]))
        if stats["distinct"] != seen:
            seen, progress_at = int(stats["distinct"]), time.monotonic()
        elif time.monotonic() - progress_at > stall_timeout_s:
            raise AssertionError(f"only {seen:,} of {expected:,} delivered; nothing new for {stall_timeout_s:.0f} s")
        await asyncio.sleep(0.2)


@dataclass
class IngestTally:
    """What ingest answered besides a plain 202: parked messages wait for the recovery sweep."""

    parked: int = 0
    unavailable: int = 0


async def post_message(api: httpx.AsyncClient, message_id: str, number: int, tally: IngestTally) -> None:
    """POST like an upstream system: a 503 is retried after its Retry-After, with the same message id."""
    body = {"order": number, "lines": [{"sku": f"SKU-{number % 97}", "qty": 1 + number % 5}]}
    headers = {"X-Message-Id": message_id, "X-Sender": "webshop"}
    for _ in range(MAX_POST_ATTEMPTS):
        response = await api.post(f"/integrations/{INTEGRATION}/messages", json=body, headers=headers)
        if response.status_code == 202:
            tally.parked += bool(response.json().get("parked"))
            return
        if response.status_code != 503:
            break
        tally.unavailable += 1
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError(f"ingest answered {response.status_code}: {response.text[:200]}")


def message_ids(run: str, count: int) -> list[str]:
    return [f"{run}-{number:07d}" for number in range(count)]


async def failures_recorded(api: httpx.AsyncClient) -> int:
    response = await api.get("/failures")
    response.raise_for_status()
    return sum(int(item["count"]) for item in response.json()["items"] if item["integration"] == INTEGRATION)


async def _settle(stack: HostStack, deleted: int) -> float:
    """Let Azurite's GC of the raw baseline's deleted messages pass before the host run (not worth it for a few)."""
    if deleted < GC_WAIT_MIN_DELETES:
        return 0.0
    return await wait_for_queue_gc(stack.azurite.connection_string)


# --- throughput --------------------------------------------------------------------------------


@dataclass
class Throughput:
    per_s: float
    raw_per_s: float
    delivery: Delivery
    posted_per_s: float
    meter: DevhostMeter
    failures: int
    tally: IngestTally
    raw_before: float
    raw_after: float


async def _raw_throughput(stack: HostStack, count: int, when: str) -> float:
    queue = azure_stores(stack.services).names.prefix + RAW_QUEUE + when
    raw = await raw_send_receive_delete(stack.azurite.connection_string, queue, count)
    print(f"    raw send+receive+delete {when}: {raw:,.1f} msg/s", flush=True)
    return raw


async def _throughput(stack: HostStack, count: int) -> Throughput:
    raw_before = await _raw_throughput(stack, count, "before")
    print(f"    then {await _settle(stack, count):,.0f} s for Azurite's GC", flush=True)
    ids = message_ids(uuid.uuid4().hex[:6], count)
    async with stack.api() as api, stack.receiver_client() as receiver:
        await put_integration(api, INTEGRATION, stack.receiver.url("/ok"))
        tally = IngestTally()
        with DevhostMeter(stack.devhost.pid) as meter:
            started = time.monotonic()
            await bounded_gather(
                list(enumerate(ids)),
                lambda item: post_message(api, item[1], item[0], tally),
                concurrency=POST_CONCURRENCY,
            )
            posted_s = time.monotonic() - started
            delivery = await wait_for_deliveries(receiver, count, stall_timeout_s=STALL_TIMEOUT_S)
        failures = await failures_recorded(api)
    per_s = rate(count, delivery.last_arrival - started)
    print(f"    host run done; then {await _settle(stack, count):,.0f} s for Azurite's GC", flush=True)
    raw_after = await _raw_throughput(stack, count, "after")
    raw = (raw_before + raw_after) / 2
    return Throughput(per_s, raw, delivery, rate(count, posted_s), meter, failures, tally, raw_before, raw_after)


async def bench_host_throughput(count: int, *, log_dir: Path | None = None) -> Result:
    async with host_stack(f"host end to end, {count:,} messages", log_dir=log_dir) as stack:
        run = await _throughput(stack, count)
    result = Result(
        benchmark="host end to end",
        case=f"{count:,} messages POSTed to ingest, 16 at a time",
        value=run.per_s,
        unit="msg/s",
        raw=run.raw_per_s,
        raw_what=(
            f"SDK on the same Azurite: send (16 at a time) + receive 16 + delete, at most 24 in flight; "
            f"{count:,} messages; the mean of a run before and a run after the host run (the load of a shared "
            "machine drifts), each followed by Azurite's GC of its deletes"
        ),
        extra={
            "seconds": round(count / run.per_s, 1),
            "ingest msg/s": round(run.posted_per_s, 1),
            "duplicates": run.delivery.duplicates,
            "failures": run.failures,
            "ingest 503s": run.tally.unavailable,
            "parked": run.tally.parked,
            "raw before msg/s": round(run.raw_before, 1),
            "raw after msg/s": round(run.raw_after, 1),
            **run.meter.extra(),
        },
    )
    result.notes.append(
        "first POST started to last distinct delivery, both on the machine's monotonic clock; devhost started as "
        "`make run` starts it, with local.settings.sample.json's values (bench/host_stack.py)"
    )
    print(f"    {result.line()}", flush=True)
    return result


# --- latency at a fixed offered load ----------------------------------------------------------------


async def paced(ids: Sequence[str], per_s: float, send: Callable[[int, str], Awaitable[None]]) -> dict[str, float]:
    """Open loop: start send(i, id) at t0 + i / per_s; returns each id's start (monotonic)."""
    starts: dict[str, float] = {}
    outstanding = asyncio.Semaphore(MAX_OUTSTANDING)
    tasks: set[asyncio.Task[None]] = set()

    async def one(number: int, message_id: str) -> None:
        try:
            await send(number, message_id)
        finally:
            outstanding.release()

    t0 = time.monotonic()
    for number, message_id in enumerate(ids):
        delay = t0 + number / per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await outstanding.acquire()
        starts[message_id] = time.monotonic()
        task = asyncio.create_task(one(number, message_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return starts


@dataclass(frozen=True)
class Latencies:
    p50_ms: float
    p95_ms: float
    max_ms: float
    offered_per_s: float


def latencies(starts: dict[str, float], arrivals: dict[str, float]) -> Latencies:
    values = [(arrivals[key] - start) * 1000 for key, start in starts.items()]
    first, last = min(starts.values()), max(starts.values())
    offered = (len(starts) - 1) / (last - first) if last > first else float("inf")
    return Latencies(percentile(values, 50), percentile(values, 95), max(values), offered)


async def _host_latency(
    stack: HostStack, per_s: int, count: int
) -> tuple[Latencies, Delivery, DevhostMeter, IngestTally]:
    ids = message_ids(uuid.uuid4().hex[:6], count)
    tally = IngestTally()
    async with stack.api() as api, stack.receiver_client() as receiver:
        await put_integration(api, INTEGRATION, stack.receiver.url("/ok"))
        with DevhostMeter(stack.devhost.pid) as meter:
            starts = await paced(ids, per_s, lambda number, message_id: post_message(api, message_id, number, tally))
            delivery = await wait_for_deliveries(receiver, count, stall_timeout_s=STALL_TIMEOUT_S)
        arrivals: dict[str, float] = (await receiver.get("/arrivals")).json()
    return latencies(starts, arrivals), delivery, meter, tally


async def _raw_latency(connection_string: str, queue: str, per_s: int, count: int) -> Latencies:
    """The SDK alone at the same pace: send start to the moment the receive loop hands the message over."""
    producer = QueueClient.from_connection_string(
        connection_string, queue, message_encode_policy=TextBase64EncodePolicy(), **RAW_SDK
    )
    consumer = QueueClient.from_connection_string(connection_string, queue, **RAW_SDK)
    arrivals: dict[str, float] = {}
    texts: list[str] = [envelope_text(number) for number in range(count)]
    ids = [str(json.loads(text)["id"]) for text in texts]

    async def received(body: bytes, message_id: str) -> None:
        arrivals.setdefault(str(json.loads(body)["id"]), time.monotonic())

    async def send(number: int, message_id: str) -> None:
        await producer.send_message(texts[number], time_to_live=-1)

    try:
        with contextlib.suppress(ResourceExistsError):
            await producer.create_queue()
        starts, _ = await asyncio.gather(paced(ids, per_s, send), host_loop(consumer, count, received))
        return latencies(starts, arrivals)
    finally:
        await producer.close()
        await consumer.close()


async def bench_host_latency(per_s: int, seconds: float, *, log_dir: Path | None = None) -> list[Result]:
    count = max(2, round(per_s * seconds))
    async with host_stack(f"host latency at {per_s} msg/s offered, {count:,} messages", log_dir=log_dir) as stack:
        queue = azure_stores(stack.services).names.prefix + RAW_QUEUE
        raw = await _raw_latency(stack.azurite.connection_string, queue, per_s, count)
        settled_s = await _settle(stack, count)
        print(
            f"    raw queue hop: p50 {raw.p50_ms:,.0f} ms, p95 {raw.p95_ms:,.0f} ms "
            f"(then {settled_s:,.0f} s for Azurite's GC)",
            flush=True,
        )
        host, delivery, meter, tally = await _host_latency(stack, per_s, count)
    raw_what = (
        f"SDK on the same Azurite, before the host run: send paced at {per_s} msg/s, open loop, to the moment a "
        "receive loop (16 a batch, at most 24 in flight, delete each) has it; "
        f"{count:,} messages"
    )
    results = []
    for name, value, raw_value in (("p50", host.p50_ms, raw.p50_ms), ("p95", host.p95_ms, raw.p95_ms)):
        result = Result(
            benchmark="host ingest→delivery latency",
            case=f"{name} at {per_s} msg/s offered",
            value=value,
            unit="ms",
            raw=raw_value,
            raw_what=raw_what,
            higher_is_better=False,
            extra={
                "messages": count,
                "offered msg/s achieved": round(host.offered_per_s, 1),
                "max ms": round(host.max_ms),
                "duplicates": delivery.duplicates,
                "ingest 503s": tally.unavailable,
                "parked": tally.parked,
                **meter.extra(),
            },
        )
        print(f"    {result.line()}", flush=True)
        results.append(result)
    results[0].notes.append(
        "latency = the receiver's first arrival of the message id - the client's monotonic time when its POST "
        "started (one clock, CLOCK_MONOTONIC, for every process on the machine); open-loop pacing"
    )
    return results


async def bench_host(
    count: int, latency_seconds: float, rates: Sequence[int] = LATENCY_RATES, *, log_dir: Path | None = None
) -> list[Result]:
    results = [await bench_host_throughput(count, log_dir=log_dir)]
    for per_s in rates:
        results += await bench_host_latency(per_s, latency_seconds, log_dir=log_dir)
    return results
