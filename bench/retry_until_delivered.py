"""A Retry-all job measured the way a user lives it: until every resent message is delivered.

One host stack (bench/host_stack.py: a fresh Azurite, devhost started like `make run` with the
sample settings, the receiver in its own process, answering 200). Seeded first, from this
process: `count` failures of one integration (bench/seed.py, transactions of 100) and a payload
blob for every one of them, because a resend carries `body_ref` and delivers that content
(shared/jobs.py `resend_envelope`). Then the raw baseline on the same Azurite, and then one
Retry-all started through the HTTP API, as the portal does, while devhost's engine drains
`inbound` under the default MAX_INBOUND_DEPTH (1,000) backpressure. The clock runs from the
POST that starts the job to the first arrival at the receiver of the last distinct message.

The one sample setting changed: JOB_RATE_LIMIT_PER_S (10,000 by default here, the most the
setting allows, against 50 in the sample) so that the per-integration limit a user chooses does
not set the figure; `--job-rate 50` measures the sample's limit instead.

While it runs: the job's status is read every second (the portal's job card polls at that
rate), `inbound`'s approximate depth every half second (its maximum is reported), the receiver's
counts every half second (the longest stretch with no new delivery is reported: Azurite's
garbage collection of deleted queue bodies shows up there, DESIGN.md section 10), and devhost's
CPU and peak RSS. Duplicates (a 200 for an id already delivered) and failures recorded during
the job are reported, not hidden.

Raw baseline: send + receive + delete of min(count, 2,000) messages with the SDK (16 sends at
a time, receive 16, at most 24 in flight), on the same Azurite after seeding, before the job;
then Azurite's GC of those deleted messages is let pass (`harness.wait_for_queue_gc`).

The job gets `--retry-budget-min` (60) minutes: a size Azurite cannot finish in that time is
reported as far as it got (the rate of what was delivered, and a note), so `make bench` ends.
At 100,000 that is what happens: every delivery deletes its claim-check blob, and Azurite's blob
delete slows with the number of blobs in the container (`python -m bench.blob_count`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.engine_throughput import raw_send_receive_delete
from bench.harness import Result, Stopwatch, azure_stores, rate, wait_for_queue_gc
from bench.host_stack import DevhostMeter, HostStack, host_stack, put_integration, receiver_stats
from bench.seed import seed_failures
from shared.errors import StorageUnavailable
from shared.values import utc_now

INTEGRATION = "orders"
RAW_QUEUE = "rawbaseline"
RAW_SAMPLE = 2_000
#: Seeding uploads one blob per failure: more at once than the job's 16, it is not what is measured.
SEED_BLOB_CONCURRENCY = 32
JOB_POLL_S = 1.0
PROGRESS_S = 30.0
START_ATTEMPTS = 10
RETRY_ALL = {"action": "retry", "selection": {"all": True}}
SAMPLE_S = 0.5
#: The job runs this long at most; a size Azurite cannot finish in time is reported as far as it got.
DEFAULT_BUDGET_MIN = 60.0
#: Below this many raw deletes Azurite's GC sweep is short; tiny runs skip the wait for it.
GC_WAIT_MIN_DELETES = 500
#: No new delivery for this long while messages are missing: stuck (GC stalls last 30-60 s, minutes after 10k).
STALL_TIMEOUT_S = 600.0


@dataclass
class Watch:
    """What the pollers saw while the job ran."""

    max_depth: int = 0
    depth: int = 0
    longest_pause_s: float = 0.0
    job_completed_s: float | None = None
    start_503s: int = 0
    job: dict[str, Any] = field(default_factory=dict)


async def _watch_depth(stack: HostStack, watch: Watch, stop: asyncio.Event) -> None:
    inbound = stack.services.stores.inbound
    while not stop.is_set():
        with contextlib.suppress(StorageUnavailable):  # a busy Azurite: the next sample will tell
            watch.depth = await inbound.depth()
            watch.max_depth = max(watch.max_depth, watch.depth)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def _watch_job(api: httpx.AsyncClient, job_id: str, watch: Watch, clock: Stopwatch, stop: asyncio.Event) -> None:
    while not stop.is_set():
        response = await api.get(f"/integrations/{INTEGRATION}/jobs/{job_id}")
        if response.status_code == 200:  # a 503 from a busy storage is the portal's problem too: read again
            watch.job = dict(response.json())
        if watch.job.get("state") not in (None, "queued", "running"):
            watch.job_completed_s = clock.elapsed_s
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), JOB_POLL_S)


async def _until_delivered(receiver: httpx.AsyncClient, count: int, watch: Watch, budget_s: float) -> dict[str, Any]:
    """The receiver's counts once all `count` arrived, or when the time budget ran out (then fewer)."""
    seen, progress_at = -1, time.monotonic()
    reported_at = deadline = progress_at
    deadline += budget_s
    while True:
        stats = await receiver_stats(receiver)
        now = time.monotonic()
        if now - reported_at >= PROGRESS_S:
            reported_at = now
            job = watch.job
            print(
                f"    {stats['distinct']:,} delivered, job {job.get('state')} {job.get('processed')}/"
                f"{job.get('total')}, inbound {watch.depth:,}, duplicates {stats['duplicates']}",
                flush=True,
            )
        if stats["distinct"] != seen:
            seen, progress_at = int(stats["distinct"]), now
        watch.longest_pause_s = max(watch.longest_pause_s, now - progress_at)
        if seen >= count or now > deadline:
            return stats
        if now - progress_at > STALL_TIMEOUT_S:
            raise AssertionError(
                f"retry-until-delivered: {seen:,} of {count:,} delivered, nothing new for {STALL_TIMEOUT_S:.0f} s"
            )
        await asyncio.sleep(SAMPLE_S)


async def _failures_left(api: httpx.AsyncClient) -> int:
    response = await api.get("/failures")
    response.raise_for_status()
    return sum(int(item["count"]) for item in response.json()["items"] if item["integration"] == INTEGRATION)


async def _start_job(api: httpx.AsyncClient, watch: Watch) -> str:
    """POST the Retry-all; a 503 (storage busy) is tried again after its Retry-After, as a user would."""
    for _ in range(START_ATTEMPTS):
        response = await api.post(f"/integrations/{INTEGRATION}/jobs", json=RETRY_ALL)
        if response.status_code == 202:
            return str(response.json()["id"])
        if response.status_code != 503:
            break
        watch.start_503s += 1
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError(f"starting the job answered {response.status_code}: {response.text[:200]}")


@dataclass(frozen=True)
class JobOutcome:
    delivered: int
    #: To the last delivery when all arrived; to the end of the time budget otherwise.
    seconds: float
    finished: bool
    duplicates: int
    failures_left: int


async def _run_job(stack: HostStack, count: int, watch: Watch, budget_s: float) -> tuple[JobOutcome, DevhostMeter]:
    stop = asyncio.Event()
    async with stack.api() as api, stack.receiver_client() as receiver:
        await put_integration(api, INTEGRATION, stack.receiver.url("/ok"))
        with DevhostMeter(stack.devhost.pid) as meter:
            clock = Stopwatch()
            started_at = time.monotonic()
            job_id = await _start_job(api, watch)
            pollers = [
                asyncio.create_task(_watch_depth(stack, watch, stop)),
                asyncio.create_task(_watch_job(api, job_id, watch, clock, stop)),
            ]
            try:
                stats = await _until_delivered(receiver, count, watch, budget_s)
            finally:
                stop.set()
                await asyncio.gather(*pollers)
        delivered = int(stats["distinct"])
        finished = delivered >= count
        seconds = float(stats["last_arrival"]) - started_at if finished else clock.elapsed_s
        # The job's last checkpoint may trail the last delivery by a page; failures are read when it ended.
        if finished and watch.job_completed_s is None:
            await _watch_job(api, job_id, watch, clock, asyncio.Event())
        await asyncio.sleep(5)  # duplicates still in `inbound` land within seconds (the host polls every ≤2 s)
        stats = await receiver_stats(receiver)
        left = await _failures_left(api)
    return JobOutcome(delivered, seconds, finished, int(stats["duplicates"]), left), meter


async def bench_retry_until_delivered(
    count: int, *, job_rate: float = 10_000, budget_min: float = DEFAULT_BUDGET_MIN, log_dir: Path | None = None
) -> Result:
    overrides = {"JOB_RATE_LIMIT_PER_S": f"{job_rate:g}"}
    async with host_stack(f"retry until delivered, {count:,} failures", overrides, log_dir=log_dir) as stack:
        watch_seed = Stopwatch()
        await seed_failures(
            stack.services, INTEGRATION, count, end=utc_now(), blob_every=1, blob_concurrency=SEED_BLOB_CONCURRENCY
        )
        print(f"    seeded {count:,} failures and their blobs in {watch_seed.elapsed_s:,.0f} s", flush=True)
        sample = min(count, RAW_SAMPLE)
        raw = await raw_send_receive_delete(
            stack.azurite.connection_string, azure_stores(stack.services).names.prefix + RAW_QUEUE, sample
        )
        settled_s = await wait_for_queue_gc(stack.azurite.connection_string) if sample >= GC_WAIT_MIN_DELETES else 0
        print(f"    raw send+receive+delete: {raw:,.1f} msg/s over {sample:,}; GC wait {settled_s:,.0f} s", flush=True)
        watch = Watch()
        outcome, meter = await _run_job(stack, count, watch, budget_min * 60)
    result = Result(
        benchmark="retry job until delivered",
        case=f"{count:,} failures, Retry-all through the host"
        + ("" if outcome.finished else f" (stopped after {budget_min:g} min: {outcome.delivered:,} delivered)"),
        value=rate(outcome.delivered, outcome.seconds),
        unit="items/s",
        raw=raw,
        raw_what=(
            "SDK on the same Azurite after seeding, before the job: send (16 at a time) + receive 16 + delete, "
            f"at most 24 in flight; {sample:,} messages"
        ),
        extra={
            ("seconds to all delivered" if outcome.finished else "seconds until stopped"): round(outcome.seconds, 1),
            "job ended s": round(watch.job_completed_s or 0.0, 1),
            "job state": str(watch.job.get("state")),
            "max inbound depth": watch.max_depth,
            "longest pause in deliveries s": round(watch.longest_pause_s, 1),
            "duplicates": outcome.duplicates,
            "failures after the job": outcome.failures_left,
            "503s starting the job": watch.start_503s,
            **meter.extra(),
        },
    )
    result.notes.append(
        f"JOB_RATE_LIMIT_PER_S {job_rate:g} (the sample has 50: a per-integration limit the user picks), "
        "MAX_INBOUND_DEPTH 1,000 and every other setting from local.settings.sample.json; job status read every "
        "second as the portal does; the raw baseline is the queue hop a resend needs, not the job's whole work"
    )
    if not outcome.finished:
        result.notes.append(
            "did not finish within the time budget (--retry-budget-min): the rate is what was delivered until then; "
            "at this size Azurite's blob deletes bound it (bench/README.md, `python -m bench.blob_count`)"
        )
    print(f"    {result.line()}", flush=True)
    return result
