"""Rebound as a user runs it, for the benchmarks through the host.

A fresh in-memory Azurite (bench.harness.PhaseAzurite), devhost started the way `make run`
starts it (devtools.launcher: `python -m devhost` on the project directory, so the project's
own host.json and function_app.py) with the values of local.settings.sample.json, changed only
where a benchmark must (storage connection, prefix, function key, port, and what the
benchmark names), and the benchmark receiver in its own process (bench/receiver.py).
local.settings.json is not read: a developer's copy must not change the figures.

`DevhostMeter` measures the devhost process from outside (psutil): CPU seconds and peak RSS
over a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.harness import PeakRss, PhaseAzurite
from bench.receiver import ReceiverProcess
from devtools.azurite import PROJECT_DIR
from devtools.process import DevhostProcess
from shared.services import Services

SAMPLE_SETTINGS = PROJECT_DIR / "local.settings.sample.json"
FUNCTION_KEY = "bench-key"
#: The admin among the sample's DEVHOST_USERS (AUTH_MODE=dev, as `make run`).
DEV_ADMIN = "admin"
#: Ingest and the job API answer in milliseconds; a busy Azurite behind them can take seconds.
HTTP_TIMEOUT_S = 60.0


def sample_settings() -> dict[str, str]:
    """The `Values` of local.settings.sample.json, as strings."""
    values = json.loads(SAMPLE_SETTINGS.read_text())["Values"]
    return {str(name): str(value) for name, value in values.items()}


def host_settings(azurite: PhaseAzurite, prefix: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The sample settings on this Azurite and prefix; `overrides` is what the benchmark changes on purpose."""
    return {
        **sample_settings(),
        "AzureWebJobsStorage": azurite.connection_string,
        "RecoveryStorage": azurite.connection_string,
        "REBOUND_PREFIX": prefix,
        "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
        **overrides,
    }


@dataclass
class DevhostUsage:
    cpu_s: float
    wall_s: float
    peak_rss_mb: float

    @property
    def cpu_percent(self) -> float:
        """Of one core: 100 is one core busy the whole time."""
        return 100 * self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class DevhostMeter:
    """CPU time (user + system) and peak RSS of the devhost process over a `with` block."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._rss = PeakRss(pid=pid)
        self._cpu_start = 0.0
        self._started = 0.0
        self.usage: DevhostUsage | None = None

    def _cpu_s(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def __enter__(self) -> DevhostMeter:
        self._cpu_start = self._cpu_s()
        self._started = time.monotonic()
        self._rss.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._rss.__exit__(*exc)
        self.usage = DevhostUsage(
            cpu_s=self._cpu_s() - self._cpu_start,
            wall_s=time.monotonic() - self._started,
            peak_rss_mb=self._rss.peak_mb,
        )

    def extra(self) -> dict[str, float | int | str]:
        """The figures as `Result.extra` entries."""
        assert self.usage is not None, "read after the block"
        return {
            "devhost CPU s": round(self.usage.cpu_s, 1),
            "devhost CPU % of a core": round(self.usage.cpu_percent),
            "devhost peak RSS MB": round(self.usage.peak_rss_mb, 1),
        }


@dataclass
class HostStack:
    azurite: PhaseAzurite
    devhost: DevhostProcess
    receiver: ReceiverProcess
    #: The app's services on the same storage and prefix, for seeding and queue depths.
    services: Services
    settings: dict[str, str] = field(default_factory=dict)

    def api(self) -> httpx.AsyncClient:
        """A client of devhost's HTTP API: the host key (ingest) and the sample's dev admin signed in
        (jobs, configs), as `make run` lets a user; ~/.netrc and proxies ignored."""
        return httpx.AsyncClient(
            base_url=self.devhost.base_url,
            headers={"x-functions-key": FUNCTION_KEY, "Authorization": f"Bearer dev:{DEV_ADMIN}"},
            timeout=HTTP_TIMEOUT_S,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    def receiver_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.receiver.url(""), timeout=HTTP_TIMEOUT_S, trust_env=False)


async def receiver_stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/stats")
    response.raise_for_status()
    return dict(response.json())


async def put_integration(api: httpx.AsyncClient, integration: str, url: str) -> None:
    config = {"name": integration, "endpoint": {"kind": "http", "url": url, "timeout_s": 10}}
    response = await api.put(f"/integrations/{integration}", json=config)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"PUT /integrations/{integration} answered {response.status_code}: {response.text}")


def log_path_for(log_dir: Path | None, phase: str) -> Path | None:
    """Where devhost's log of a phase is kept (`--devhost-logs DIR`); None: a temporary file, gone when it ends well."""
    if log_dir is None:
        return None
    return log_dir / (re.sub(r"[^a-z0-9]+", "-", phase.lower()).strip("-") + ".log")


@contextlib.asynccontextmanager
async def host_stack(
    name: str, overrides: Mapping[str, str] | None = None, *, log_dir: Path | None = None
) -> AsyncIterator[HostStack]:
    """Azurite, receiver and devhost for one phase; all stopped afterwards (Azurite's ports freed)."""
    log_path = log_path_for(log_dir, name)
    azurite = PhaseAzurite()
    await asyncio.to_thread(azurite.start)
    prefix = "h" + uuid.uuid4().hex[:8]
    settings = host_settings(azurite, prefix, overrides or {})
    where = "" if log_path is None else f", devhost log {log_path}"
    print(f"--- {name}: Azurite on {azurite.process.ports}, prefix {prefix}{where}", flush=True)
    receiver = ReceiverProcess()
    devhost = DevhostProcess(PROJECT_DIR, env=settings, log_path=log_path, use_local_settings=False)
    # The benchmark's own side (seeding, depth reads) is patient with a busy Azurite: harness settings.
    services = Services(azurite.settings(REBOUND_PREFIX=prefix))
    try:
        await asyncio.to_thread(receiver.start)
        await asyncio.to_thread(devhost.start)
        yield HostStack(azurite=azurite, devhost=devhost, receiver=receiver, services=services, settings=settings)
    finally:
        await asyncio.to_thread(devhost.stop)
        receiver.stop()
        await services.close()
        await asyncio.to_thread(azurite.stop)
