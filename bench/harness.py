"""What every benchmark shares: a fresh Azurite per phase, timing, peak RSS, result rows.

DESIGN.md section 10: raw Azurite rates vary 2x from run to run, and Azurite degrades after
thousands of deletes (its garbage collection of deleted queue bodies), so every phase starts
its own in-memory Azurite on free ports, and the next one starts only after the ports are free.
Each figure is printed next to the same storage operations done raw with the Azure SDK in the
same phase, and their ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psutil
from azure.storage.queue.aio import QueueClient

from devtools.azurite import AzuriteProcess, port_open
from shared.services import Services
from shared.settings import Settings
from shared.storage.azure import AzureStores

T = TypeVar("T")

#: Azurite keeps everything in memory here; the benchmark's 100,000 rows need far less.
AZURITE_EXTENT_MEMORY_MB = 1024
PORT_FREE_TIMEOUT_S = 30.0


@dataclass
class Result:
    """One benchmark figure and its raw-Azurite counterpart from the same phase.

    `higher_is_better` is True for rates (ratio below 1: slower than raw) and False for
    latencies (ratio above 1: slower than raw). The ratio is always Rebound / raw.
    """

    benchmark: str
    case: str
    value: float
    unit: str
    raw: float | None
    raw_what: str
    higher_is_better: bool = True
    notes: list[str] = field(default_factory=list)
    extra: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.raw is None or self.raw == 0:
            return None
        return self.value / self.raw

    def line(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.2f}x raw"
        raw = "n/a" if self.raw is None else f"{self.raw:,.1f}"
        extra = "".join(f", {key}={value}" for key, value in self.extra.items())
        return f"{self.benchmark} / {self.case}: {self.value:,.1f} {self.unit} (raw {raw}; {ratio}){extra}"


class PhaseAzurite:
    """A fresh in-memory Azurite for one phase; stopping waits until its ports are free."""

    def __init__(self) -> None:
        self.process = AzuriteProcess(extent_memory_limit_mb=AZURITE_EXTENT_MEMORY_MB)

    @property
    def connection_string(self) -> str:
        return self.process.connection_string

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        ports = self.process.ports
        self.process.stop()
        deadline = time.monotonic() + PORT_FREE_TIMEOUT_S
        while any(port_open(p) for p in (ports.blob, ports.queue, ports.table)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Azurite ports {ports} still busy after {PORT_FREE_TIMEOUT_S} s")
            time.sleep(0.1)

    def settings(self, **overrides: str) -> Settings:
        env = {
            "AzureWebJobsStorage": self.connection_string,
            "RecoveryStorage": self.connection_string,
            "REBOUND_PREFIX": "b" + uuid.uuid4().hex[:8],
            # An idle Azurite answers in milliseconds; a busy one (GC) can take long. Be patient.
            "STORAGE_TIMEOUT_S": "60",
            # The benchmark receiver listens on 127.0.0.1.
            "ALLOW_PRIVATE_ENDPOINTS": "true",
            # The benchmarks call the services, not the routes; stated, as every environment states it.
            "AUTH_MODE": "key",
        }
        env.update(overrides)
        return Settings.from_env(env)


@contextlib.asynccontextmanager
async def phase(name: str, **overrides: str) -> AsyncIterator[tuple[PhaseAzurite, Services]]:
    """A fresh Azurite and the app's services on it; everything is stopped afterwards."""
    azurite = PhaseAzurite()
    await asyncio.to_thread(azurite.start)
    print(f"--- {name}: Azurite on {azurite.process.ports}", flush=True)
    services = Services(azurite.settings(**overrides))
    try:
        yield azurite, services
    finally:
        await services.close()
        await asyncio.to_thread(azurite.stop)


#: The raw baselines' SDK clients skip the environment (proxies, ~/.netrc) as Rebound's own do
#: (shared/storage/clients.py): raw stays the best the SDK can do, not its defaults' cost.
RAW_SDK: dict[str, Any] = {"use_env_settings": False}


def azure_stores(services: Services) -> AzureStores:
    """The Azure stores behind `services`: benchmarks reach Azurite's tables and queues directly too."""
    stores = services.stores
    assert isinstance(stores, AzureStores)
    return stores


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if len(ordered) == 1:
        return ordered[0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    if q <= 0:
        return ordered[0]
    if q >= 100:
        return ordered[-1]
    return cuts[int(q) - 1]


class PeakRss:
    """Samples a process's resident set size in a thread; `peak_mb` is the highest seen in the block.

    The process is this one, or `pid` (devhost, in the benchmarks through the host).
    getrusage's ru_maxrss only knows the process's lifetime maximum, which an earlier phase may
    have set; sampling every 50 ms gives the peak of this block (and may miss a spike shorter
    than that).
    """

    def __init__(self, interval_s: float = 0.05, *, pid: int | None = None) -> None:
        self._process = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self.start_mb = self._rss_mb()
        self.peak_mb = self.start_mb

    def _rss_mb(self) -> float:
        return float(self._process.memory_info().rss) / (1024 * 1024)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.peak_mb = max(self.peak_mb, self._rss_mb())
            except psutil.NoSuchProcess:
                return  # the process ended; its peak is what was seen

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(psutil.NoSuchProcess):
            self.peak_mb = max(self.peak_mb, self._rss_mb())

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.start_mb


async def bounded_gather(items: Iterable[T], work: Callable[[T], Awaitable[object]], *, concurrency: int) -> None:
    """Run `work` over `items`, at most `concurrency` at a time (a worker pool, not one task per item)."""
    iterator: Iterator[T] = iter(items)

    async def worker() -> None:
        for item in iterator:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def pass_one_message(queue: QueueClient) -> None:
    """Send one message, receive it and delete it: what handing a job page to the next invocation costs."""
    await queue.send_message("{}", time_to_live=-1)
    async for message in queue.receive_messages(max_messages=1, visibility_timeout=300):
        await queue.delete_message(message)
        break


#: Azurite sweeps the bodies of deleted queue messages every 60 s (its QueueGCManager); after
#: thousands of deletes one sweep holds its only core for tens of seconds (DESIGN.md section 10).
AZURITE_QUEUE_GC_INTERVAL_S = 60.0
#: Azurite counts as settled when a send + receive + delete on an empty queue is this quick, this often in a row.
SETTLED_CYCLE_MS = 250.0
SETTLED_CYCLES = 3


async def wait_for_queue_gc(connection_string: str, *, timeout_s: float = 600.0) -> float:
    """After bulk deletes: let Azurite's next queue GC sweep pass, so the next measurement does not pay for it.

    Waits one GC interval (a sweep starts within it), then until a send + receive + delete on an
    empty queue is quick SETTLED_CYCLES times in a row. Returns the seconds waited.
    """
    watch = Stopwatch()
    probe = QueueClient.from_connection_string(connection_string, "gcprobe" + uuid.uuid4().hex[:8])
    try:
        await probe.create_queue()
        await asyncio.sleep(AZURITE_QUEUE_GC_INTERVAL_S)
        quick = 0
        while quick < SETTLED_CYCLES:
            if watch.elapsed_s > timeout_s:
                raise TimeoutError(f"Azurite was still slow {timeout_s:.0f} s after the deletes")
            cycle = Stopwatch()
            await pass_one_message(probe)
            quick = quick + 1 if cycle.elapsed_s * 1000 < SETTLED_CYCLE_MS else 0
            await asyncio.sleep(0.5)
        await probe.delete_queue()
    finally:
        await probe.close()
    return watch.elapsed_s


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
