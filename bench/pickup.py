"""Pickup rate: files/s taken from a blob container and put on `inbound`, beside raw list + read + delete.

Seed `count` blobs of 1 KiB in an upstream container, then let the pickup runner take them the way
the timer does (`run_source`, a run at most `max_per_run` = 1,000 files, until the container is
empty). Per file a run reads its duplicate-detection row, downloads it, enqueues the envelope,
writes the row and deletes the blob with its ETag, one file after another; per run it takes and
releases the source's lease and reads `inbound`'s depth.

Raw baseline, in the same Azurite just before: the same number of blobs in another container,
listed, then per blob downloaded and deleted with the SDK, sequentially, as the runner goes: what
any pickup must do at least. The ratio is the price of the enqueue and of duplicate detection.
"""

from __future__ import annotations

import uuid

from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from bench.harness import Result, Stopwatch, bounded_gather, phase, rate
from bench.jobs import BENCH_ACTOR
from shared.pickup.runner import RunReport

SEED_CONCURRENCY = 16
BODY = b"<order>" + b"x" * 1009 + b"</order>"  # 1 KiB


async def _seed(container: ContainerClient, count: int) -> None:
    await container.create_container()

    async def upload(number: int) -> None:
        await container.upload_blob(f"in/{number:07}.xml", BODY)

    await bounded_gather(range(count), upload, concurrency=SEED_CONCURRENCY)


async def _raw(container: ContainerClient, count: int) -> float:
    watch = Stopwatch()
    taken = 0
    names = [blob.name async for blob in container.list_blobs(name_starts_with="in/")]
    for name in names:
        blob = container.get_blob_client(name)
        await (await blob.download_blob()).readall()
        await blob.delete_blob()
        taken += 1
    if taken != count:
        raise AssertionError(f"raw baseline took {taken} of {count}")
    return rate(taken, watch.elapsed_s)


async def bench_pickup(count: int) -> list[Result]:
    async with phase("pickup", MIN_PICKUP_INTERVAL_S="1", MAX_INBOUND_DEPTH=str(count + 1000)) as (
        azurite,
        services,
    ):
        client = BlobServiceClient.from_connection_string(azurite.connection_string)
        raw_container = client.get_container_client(f"raw{uuid.uuid4().hex[:8]}")
        drop = client.get_container_client(f"drop{uuid.uuid4().hex[:8]}")
        try:
            await _seed(raw_container, count)
            await _seed(drop, count)
            raw = await _raw(raw_container, count)
            print(f"    raw list + read + delete: {raw:,.1f} files/s", flush=True)
            # The "upstream" container is on the app's own account here (any name but Rebound's own may be read).
            source = {
                "kind": "blob",
                "connection": "AzureWebJobsStorage",
                "container": drop.container_name,
                "prefix": "in/",
            }
            body = {"name": "bench", "endpoint": {"kind": "http", "url": "https://shop.example/in"}}
            config, _ = await services.integrations.save(
                "bench", {**body, "source": {**source, "max_per_run": 1000, "interval_seconds": 1}}, actor=BENCH_ACTOR
            )
            reports: list[RunReport] = []
            watch = Stopwatch()
            while sum(r.picked for r in reports) < count:
                report = await services.pickup_runner.run_source(config, requested=True)
                if report is None or report.errors:
                    raise AssertionError(f"pickup run failed: {report}")
                reports.append(report)
            seconds = watch.elapsed_s
        finally:
            await client.close()
    picked = sum(r.picked for r in reports)
    result = Result(
        benchmark="pickup",
        case=f"blob source, {count:,} files of 1 KiB",
        value=rate(picked, seconds),
        unit="files/s",
        raw=raw,
        raw_what=f"SDK: list, then per blob download + delete, sequential; {count:,} blobs of 1 KiB",
        extra={"seconds": round(seconds, 1), "picked": picked, "runs": len(reports)},
    )
    print(f"    {result.line()}", flush=True)
    return [result]
