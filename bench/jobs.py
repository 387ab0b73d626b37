"""Retry job and delete job over many failures: items/s and peak RSS, against raw Azurite.

Per action, one phase (a fresh Azurite): seed `count` failures of `orders` plus `raw_sample`
failures of a second integration in the same table, measure the raw baseline on the second
integration, then run the job on `orders` the way the host does (receive the `jobs` queue
message, `run_page`, delete it; repeat until the job ends).

Raw baseline, same storage operations at the same concurrency, no Rebound code: stream the
partition 100 rows a page; per page, for retry send one queue message per row (16 at a time),
for delete delete one blob per row (16 at a time, most of them do not exist, as in the job);
then delete the page's rows in one ETag-guarded table transaction, and pass one page message
through a queue (send, receive, delete), as the job hands each page to the next invocation.

Nothing consumes `inbound` during a retry job, and nothing drains it: MAX_INBOUND_DEPTH is
set above what the phase sends, so the job's backpressure never pauses it (the depth check
still runs once per page). A drain that cleared `inbound` whenever it held more than 200
messages was tried first and abandoned: clearing thousands of messages sets off Azurite's
garbage collection of deleted bodies, which pegged its core for over a minute with the job
waiting (one send timed out and was parked), measuring Azurite's GC rather than the job.

The price of not draining: Azurite's receive and delete on any queue slow down with every
message waiting in any queue of the account (`python -m bench.queue_depth`: a send + receive +
delete on an empty queue took 12 ms with nothing waiting elsewhere and about a second with
40,000-50,000 waiting), while sends stay flat. The job pays that once per page for its page
message, with 10,000 to 110,000 messages in `inbound`; the raw baseline before the job runs with
0-10,000. So the retry phase measures the raw baseline a second time after the job, on its
own sample, with everything the job sent still waiting: the two bracket the job's conditions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TransactionOperation
from azure.data.tables.aio import TableClient
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.harness import (
    RAW_SDK,
    PeakRss,
    Result,
    Stopwatch,
    azure_stores,
    bounded_gather,
    pass_one_message,
    phase,
    rate,
)
from bench.seed import seed_failures
from shared.audit.models import Actor
from shared.jobs.models import Job, JobAction, JobRequest, JobSelection, JobState
from shared.services import Services
from shared.values import utc_now

INTEGRATION = "orders"
RAW_INTEGRATION = "rawbaseline"
RAW_AFTER_INTEGRATION = "rawafter"
RAW_PAGE_QUEUE = "rawpages"
#: Items in the raw baseline after a retry job: a page message costs seconds there.
RAW_AFTER_SAMPLE = 2_000
CONCURRENCY = 16

#: Who the benchmark's jobs are started by (the audit trail names it).
BENCH_ACTOR = Actor(name="bench", id="bench", auth="system")


@dataclass
class JobRun:
    job: Job
    seconds: float
    pages: int
    deferred: int


async def run_job_to_end(services: Services, job: Job) -> JobRun:
    """Deliver the job's page messages to the runner like the host would, until the job ends."""
    azure = azure_stores(services)
    queues, jobs_queue = azure.account.queues, azure.names.jobs_queue
    watch = Stopwatch()
    pages = deferred = 0
    while True:
        messages = await queues.receive(jobs_queue, max_messages=1, visibility_timeout_s=300)
        if not messages:
            current = await services.jobs.get(job.integration, job.id, now=utc_now())
            if not current.state.is_active:
                return JobRun(job=current, seconds=watch.elapsed_s, pages=pages, deferred=deferred)
            await asyncio.sleep(0.1)  # a deferred page is invisible for a few seconds
            continue
        for message in messages:
            outcome = await services.job_runner.run_page(message.body, message_id=message.id, now=utc_now())
            if outcome is None:
                deferred += 1
            else:
                pages += 1
            await queues.delete(jobs_queue, message)


@contextlib.asynccontextmanager
async def _profiled(path: Path | None) -> AsyncIterator[None]:
    if path is None:
        yield
        return
    from pyinstrument import Profiler  # a development tool (requirements-dev.txt)

    profiler = Profiler(interval=0.001, async_mode="enabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        _write(path, profiler.output_text(unicode=False, color=False, show_all=False))
        print(f"    profile written to {path}", flush=True)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def _raw_pages(table: TableClient, integration: str) -> AsyncIterator[list[Any]]:
    pager = table.query_entities("PartitionKey eq @pk", parameters={"pk": integration}, results_per_page=100).by_page()
    async for page in pager:
        yield [entity async for entity in page]


async def raw_baseline(services: Services, connection_string: str, action: JobAction, integration: str) -> float:
    """Items/s for the job's storage operations done with the SDK directly (see module doc)."""
    names = azure_stores(services).names
    table = TableClient.from_connection_string(connection_string, names.failures, **RAW_SDK)
    queue = QueueClient.from_connection_string(
        connection_string, names.inbound, message_encode_policy=TextBase64EncodePolicy(), **RAW_SDK
    )
    container = ContainerClient.from_connection_string(connection_string, names.payloads, **RAW_SDK)
    pages = QueueClient.from_connection_string(connection_string, names.prefix + RAW_PAGE_QUEUE, **RAW_SDK)
    for client in (queue, pages):
        with contextlib.suppress(Exception):
            await client.create_queue()

    async def send(entity: Any) -> None:
        text = json.dumps(
            {
                "id": entity["MessageId"],
                "integration": entity["PartitionKey"],
                "sender": entity.get("Sender"),
                "receiver": entity.get("Receiver"),
                "content_type": entity.get("ContentType"),
                "headers": {},
                "body_ref": entity.get("BodyRef"),
                "received_at": str(entity.get("ReceivedAt")),
                "resend_count": int(entity.get("ResendCount", 0)) + 1,
            }  # fmt: skip
        )
        await queue.send_message(text, time_to_live=-1)

    async def delete_blob(entity: Any) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await container.delete_blob(entity["BodyRef"])

    done = 0
    watch = Stopwatch()
    try:
        async for rows in _raw_pages(table, integration):
            await bounded_gather(rows, send if action is JobAction.RETRY else delete_blob, concurrency=CONCURRENCY)
            await table.submit_transaction(
                [
                    (
                        TransactionOperation.DELETE,
                        row,
                        {"etag": row.metadata["etag"], "match_condition": MatchConditions.IfNotModified},
                    )
                    for row in rows
                ]  # fmt: skip
            )
            await pass_one_message(pages)
            done += len(rows)
        return rate(done, watch.elapsed_s)
    finally:
        await table.close()
        await queue.close()
        await pages.close()
        await container.close()


async def bench_job(action: JobAction, count: int, *, raw_sample: int, profile: Path | None = None) -> Result:
    settings = {
        "JOB_RATE_LIMIT_PER_S": "10000",  # the most the setting allows; far above what the job reaches
        "JOB_PAGE_SIZE": "100",
        "MAX_INBOUND_DEPTH": str(count + raw_sample + 1000),  # nothing consumes inbound here (module doc)
    }
    async with phase(f"{action.value} job at {count:,} failures", **settings) as (azurite, services):
        seeded = await _seed(services, action, count, raw_sample)
        raw = await raw_baseline(services, azurite.connection_string, action, RAW_INTEGRATION)
        print(f"    raw baseline: {raw:,.1f} items/s over {raw_sample:,} items", flush=True)
        run, rss = await _run_to_completion(services, action, count, profile)
        result = _measure(action, seeded, run, rss, raw)
        if action is JobAction.DELETE:
            result.notes.append(
                f"payload blobs seeded for {seeded.payload_blobs:,} of {count:,} failures (1 %); the job deletes "
                "every failure's blob, so 99 % of its blob deletes answer 404 (measured, and the raw "
                "baseline does the same)"
            )
        else:
            await _measure_after_retry(result, services, azurite.connection_string, seeded, run, raw)
        print(f"    {result.line()}", flush=True)
        return result


@dataclass(frozen=True)
class SeededPhase:
    """What `_seed` put into the phase's account."""

    failures: int
    payload_blobs: int
    raw_sample: int
    #: Items kept for the raw baseline after a retry job (0 for a delete job).
    raw_after_sample: int


async def _seed(services: Services, action: JobAction, count: int, raw_sample: int) -> SeededPhase:
    """The job's failures, the raw baseline's sample, and after a retry job a second raw sample."""
    end = utc_now()
    watch = Stopwatch()
    seeded = await seed_failures(services, INTEGRATION, count, end=end)
    seed_rate = rate(count, watch.elapsed_s)
    await seed_failures(services, RAW_INTEGRATION, raw_sample, end=end, prefix="r", rebuild_summary=False)
    raw_after_sample = min(raw_sample, RAW_AFTER_SAMPLE) if action is JobAction.RETRY else 0
    if raw_after_sample:
        await seed_failures(
            services, RAW_AFTER_INTEGRATION, raw_after_sample, end=end, prefix="a", rebuild_summary=False
        )
    raw_total = raw_sample + raw_after_sample
    print(f"    seeded {count:,} + {raw_total:,} failures ({seed_rate:,.0f} rows/s incl. summary rebuild)")
    return SeededPhase(
        failures=count, payload_blobs=seeded.blobs, raw_sample=raw_sample, raw_after_sample=raw_after_sample
    )


async def _run_to_completion(
    services: Services, action: JobAction, count: int, profile: Path | None
) -> tuple[JobRun, PeakRss]:
    """Start the job over every failure and run it to its end; a job that left work undone is an error."""
    with PeakRss() as rss:
        async with _profiled(profile):
            job = await services.jobs.start(
                INTEGRATION,
                JobRequest(action=action, selection=JobSelection(all=True)),
                actor=BENCH_ACTOR,
                now=utc_now(),
            )
            run = await run_job_to_end(services, job)
    done = run.job
    if done.state is not JobState.COMPLETED or done.succeeded != count:
        raise AssertionError(f"{action.value} job ended {done.state.value} with {done.succeeded}/{count} items")
    remaining = (await services.stores.failures.summary(INTEGRATION)).count
    if remaining:
        raise AssertionError(f"{remaining} failures left after the {action.value} job")
    return run, rss


def _measure(action: JobAction, seeded: SeededPhase, run: JobRun, rss: PeakRss, raw: float) -> Result:
    count, raw_sample = seeded.failures, seeded.raw_sample
    return Result(
        benchmark=f"{action.value} job",
        case=f"{count:,} failures",
        value=rate(count, run.seconds),
        unit="items/s",
        raw=raw,
        raw_what=(
            "SDK: query 100 a page, "
            + ("send each message" if action is JobAction.RETRY else "delete each payload blob")
            + f" ({CONCURRENCY} at a time), one ETag'd transaction of 100 deletes; "
            + f"one page message through a queue per page; {raw_sample:,} items"
        ),
        extra={
            "seconds": round(run.seconds, 1),
            "peak RSS MB": round(rss.peak_mb, 1),
            "RSS growth MB": round(rss.growth_mb, 1),
            "pages": run.pages,
        },
    )


async def _measure_after_retry(
    result: Result, services: Services, connection_string: str, seeded: SeededPhase, run: JobRun, raw: float
) -> None:
    """A retry job leaves what it sent in `inbound`: measure raw again in those conditions (module doc)."""
    count = seeded.failures
    raw_after = None
    if seeded.raw_after_sample:
        raw_after = await raw_baseline(services, connection_string, JobAction.RETRY, RAW_AFTER_INTEGRATION)
        print(f"    raw baseline after the job: {raw_after:,.1f} items/s over {seeded.raw_after_sample:,}", flush=True)
    depth = await services.stores.inbound.depth()
    result.extra["inbound depth at the end"] = depth
    result.notes.append(
        "nothing drains `inbound` (clearing it set off Azurite's GC stalls; bench/jobs.py says why), so "
        f"MAX_INBOUND_DEPTH was {count + seeded.raw_sample + 1000:,} and backpressure deferred {run.deferred} pages"
    )
    if raw_after is not None:
        after = count + seeded.raw_sample
        result.extra["raw after the job items/s"] = round(raw_after, 1)
        result.extra["ratio to raw after"] = round(result.value / raw_after, 2)
        result.notes.append(
            f"Azurite's queue receive and delete slow down with every message waiting in the account "
            f"(`python -m bench.queue_depth`), and the job ran with {seeded.raw_sample:,} to {after:,} waiting "
            f"in `inbound`: the raw baseline ran before the job with 0 to {seeded.raw_sample:,} waiting "
            f"({raw:,.1f} items/s) and again after it with {after:,} waiting ({raw_after:,.1f} items/s, "
            f"{seeded.raw_after_sample:,} items); the job's figure lies between the conditions of the two"
        )
