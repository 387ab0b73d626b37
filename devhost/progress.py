"""A live progress line for long local runs: queue depths and invocations per second.

Every DEVHOST_PROGRESS_S seconds (default 10; 0 turns it off) devhost logs one line while
there is anything to tell (work done, or messages waiting):
    progress invocations/s=42.5 in_flight=24 queues inbound=812 jobs=0
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

from devhost.errors import StartupError
from devhost.invocation import Invoker
from devhost.queue_listener import QueueListener

logger = logging.getLogger("devhost.progress")

PROGRESS_SETTING = "DEVHOST_PROGRESS_S"
DEFAULT_PROGRESS_S = 10.0


def progress_interval_s(settings: Mapping[str, str]) -> float:
    raw = settings.get(PROGRESS_SETTING, "").strip()
    if not raw:
        return DEFAULT_PROGRESS_S
    try:
        value = float(raw)
    except ValueError:
        raise StartupError(f"{PROGRESS_SETTING}={raw!r} must be a number of seconds (0 turns it off)") from None
    if value < 0:
        raise StartupError(f"{PROGRESS_SETTING}={raw!r} must not be negative")
    return value


def progress_line(rate: float, in_flight: int, depths: Mapping[str, int | None]) -> str:
    queues = " ".join(f"{name}={'?' if depth is None else depth}" for name, depth in depths.items())
    return f"progress invocations/s={rate:.1f} in_flight={in_flight} queues {queues}".rstrip()


class ProgressReporter:
    def __init__(self, invoker: Invoker, listeners: Sequence[QueueListener], interval_s: float) -> None:
        self._invoker = invoker
        self._listeners = listeners
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="devhost-progress")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        last_count, last_time = self._invoker.completed, time.monotonic()
        while True:
            await asyncio.sleep(self._interval_s)
            now, count = time.monotonic(), self._invoker.completed
            rate = (count - last_count) / (now - last_time) if now > last_time else 0.0
            last_count, last_time = count, now
            depths = {listener.function.queue_name: await listener.depth() for listener in self._listeners}
            in_flight = sum(listener.in_flight for listener in self._listeners)
            if rate > 0 or in_flight or any(depths.values()):
                logger.info(progress_line(rate, in_flight, depths))
