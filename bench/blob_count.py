"""How raw Azurite's blob operations depend on how many blobs the container holds (no Rebound code).

`python -m bench.blob_count [--blobs 60000] [--block 10000]` fills one container of a fresh
in-memory Azurite in blocks of 1 KiB blobs (32 uploads at a time) and prints per block the
upload rate and the time of one download and one delete (each the mean of `--ops`, one at a
time). It explains the retry-until-delivered figure at large sizes: every resent message that
is delivered deletes its claim-check blob, and on Azurite a delete costs more the more blobs the
container holds (a download does not), while Azure Storage has no such dependence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from azure.storage.blob.aio import ContainerClient

from bench.harness import PhaseAzurite, Stopwatch, bounded_gather, rate

CONCURRENCY = 32
BODY = b"x" * 1024


@dataclass(frozen=True)
class Sample:
    blobs: int
    uploads_per_s: float
    download_ms: float
    delete_ms: float


async def _mean_ms(names: list[str], op: Callable[[str], Awaitable[object]]) -> float:
    watch = Stopwatch()
    for name in names:
        await op(name)
    return watch.elapsed_s * 1000 / len(names)


async def probe(blobs: int, block: int, ops: int) -> list[Sample]:
    """One sample after each block of uploads."""
    azurite = PhaseAzurite()
    await asyncio.to_thread(azurite.start)
    container = ContainerClient.from_connection_string(azurite.connection_string, "blobcount")
    samples: list[Sample] = []
    try:
        await container.create_container()
        for start in range(0, blobs, block):

            async def upload(number: int) -> None:
                await container.upload_blob(f"b{number:07d}", BODY, overwrite=True)

            watch = Stopwatch()
            await bounded_gather(range(start, start + block), upload, concurrency=CONCURRENCY)
            uploads_per_s = rate(block, watch.elapsed_s)
            names = [f"b{number:07d}" for number in range(start, start + ops)]
            download_ms = await _mean_ms(names, lambda name: _download(container, name))
            delete_ms = await _mean_ms(names, container.delete_blob)
            samples.append(Sample(start + block - ops, uploads_per_s, download_ms, delete_ms))
            print(
                f"{samples[-1].blobs:>7,} blobs: {uploads_per_s:6.1f} uploads/s, download {download_ms:7.1f} ms, "
                f"delete {delete_ms:7.1f} ms",
                flush=True,
            )
    finally:
        with contextlib.suppress(Exception):
            await container.close()
        await asyncio.to_thread(azurite.stop)
    return samples


async def _download(container: ContainerClient, name: str) -> bytes:
    stream = await container.download_blob(name)
    return await stream.readall()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.blob_count", description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=60_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=10, help="downloads and deletes per sample, one at a time")
    args = parser.parse_args()
    asyncio.run(probe(args.blobs, args.block, args.ops))


if __name__ == "__main__":
    main()
