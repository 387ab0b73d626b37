"""How raw Azurite's queue operations depend on how many messages wait in it (no Rebound code).

`python -m bench.queue_depth [--messages 100000] [--block 10000]` fills one queue of a fresh
in-memory Azurite in blocks, sending 16 at a time as the retry job does, and prints per block
the depth it started at, the send rate, the time of one depth read, and the time of one
send + receive + delete on a second, otherwise empty queue (what a job page costs the jobs
queue). It explains the retry job's figure at 100,000 failures: nothing drains `inbound` in
that benchmark, so the job works while ever more messages wait in Azurite, while its raw
baseline runs with 0-10,000 waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass

from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from bench.harness import PhaseAzurite, Stopwatch, bounded_gather, pass_one_message, rate

CONCURRENCY = 16
BODY = '{"id": "m", "integration": "orders", "body": "x"}'


@dataclass(frozen=True)
class Sample:
    depth: int
    sends_per_s: float
    depth_read_ms: float
    other_queue_cycle_ms: float


async def _cycle_ms(queue: QueueClient, cycles: int) -> float:
    """Mean ms of one send + receive + delete on `queue`."""
    watch = Stopwatch()
    for _ in range(cycles):
        await pass_one_message(queue)
    return watch.elapsed_s * 1000 / cycles


async def probe(messages: int, block: int, cycles: int) -> list[Sample]:
    """One sample per block, taken before the block's sends."""
    azurite = PhaseAzurite()
    await asyncio.to_thread(azurite.start)
    queue, other = (
        QueueClient.from_connection_string(
            azurite.connection_string, name, message_encode_policy=TextBase64EncodePolicy()
        )
        for name in ("depthprobe", "depthprobeother")
    )
    samples: list[Sample] = []
    try:
        await queue.create_queue()
        await other.create_queue()

        async def send(_: int) -> None:
            await queue.send_message(BODY, time_to_live=-1)

        for _ in range(0, messages, block):
            read = Stopwatch()
            depth = (await queue.get_queue_properties()).approximate_message_count or 0
            read_ms = read.elapsed_s * 1000
            cycle_ms = await _cycle_ms(other, cycles)
            watch = Stopwatch()
            await bounded_gather(range(block), send, concurrency=CONCURRENCY)
            samples.append(Sample(depth, rate(block, watch.elapsed_s), read_ms, cycle_ms))
            print(
                f"depth {depth:>7,}: {samples[-1].sends_per_s:6.1f} sends/s, depth read {read_ms:6.1f} ms, "
                f"send+receive+delete on another queue {cycle_ms:7.1f} ms",
                flush=True,
            )
    finally:
        for client in (queue, other):
            with contextlib.suppress(Exception):
                await client.close()
        await asyncio.to_thread(azurite.stop)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_depth", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=10, help="send+receive+delete cycles per sample")
    args = parser.parse_args()
    asyncio.run(probe(args.messages, args.block, args.cycles))


if __name__ == "__main__":
    main()
