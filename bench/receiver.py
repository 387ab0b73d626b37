"""A real HTTP receiver on 127.0.0.1, run as its own process so it never competes with the
engine's event loop (`python -m bench.receiver --port N`).

Paths choose the behaviour:
  /ok        200 to everything;
  /reject    400 to everything (a permanent failure: the engine records it);
  /flaky/P   503 to the first attempt of about P % of messages (chosen by a hash of the
             Idempotency-Key), 200 otherwise and to every later attempt;
  /gate      400 while the gate is closed (it starts closed), then 200: a receiver that was
             down and recovers (POST /control/open, /control/close).
Every 200 counts as a delivery of its Idempotency-Key: the first arrival of each key is kept
(time.monotonic() of this process: CLOCK_MONOTONIC, one clock for every process on the
machine, so a client on the same machine can subtract its own monotonic timestamps), a
later 200 for the same key is a duplicate.

GET /stats answers {"requests", "rejected", "transient", "delivered", "distinct", "duplicates",
"first_arrival", "last_arrival"} (the arrivals: first and newest first-arrival, monotonic s, or
null); GET /arrivals answers {key: first arrival} (meant for runs of thousands, not 100,000s);
POST /control/reset forgets everything and closes the gate.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import subprocess
import sys
import time
from types import TracebackType

from aiohttp import web

from devtools.azurite import free_port, port_open


class _Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.rejected = 0
        self.transient = 0
        self.seen: set[str] = set()
        self.gate_open = False
        #: Idempotency-Key → monotonic time of its first 200.
        self.arrivals: dict[str, float] = {}
        self.delivered = 0
        self.last_arrival: float | None = None
        self.first_arrival: float | None = None

    def deliver(self, key: str) -> None:
        self.delivered += 1
        if key in self.arrivals:
            return
        now = time.monotonic()
        self.arrivals[key] = now
        self.last_arrival = now
        if self.first_arrival is None:
            self.first_arrival = now

    def stats(self) -> dict[str, float | int | None]:
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "transient": self.transient,
            "delivered": self.delivered,
            "distinct": len(self.arrivals),
            "duplicates": self.delivered - len(self.arrivals),
            "first_arrival": self.first_arrival,
            "last_arrival": self.last_arrival,
        }


def _percent_of(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 100


def _key(request: web.Request) -> str:
    return request.headers.get("Idempotency-Key", "")


def build_app() -> web.Application:
    counts = _Counts()

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        counts.requests += 1
        counts.deliver(_key(request))
        return web.Response(status=200)

    async def reject(request: web.Request) -> web.Response:
        await request.read()
        counts.requests += 1
        counts.rejected += 1
        return web.Response(status=400, text="order rejected: field 'sku' is required")

    async def gate(request: web.Request) -> web.Response:
        if counts.gate_open:
            return await ok(request)
        return await reject(request)

    async def control(request: web.Request) -> web.Response:
        nonlocal counts
        action = request.match_info["action"]
        if action == "reset":
            counts = _Counts()
        else:
            counts.gate_open = action == "open"
        return web.json_response({"gate_open": counts.gate_open})

    async def flaky(request: web.Request) -> web.Response:
        await request.read()
        counts.requests += 1
        key = request.headers.get("Idempotency-Key", "")
        percent = int(request.match_info["percent"])
        first = key not in counts.seen
        counts.seen.add(key)
        if first and _percent_of(key) < percent:
            counts.transient += 1
            return web.Response(status=503, text="busy, try again")
        counts.deliver(key)
        return web.Response(status=200)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts.stats())

    async def arrivals(request: web.Request) -> web.Response:
        return web.json_response(counts.arrivals)

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/reject", reject)
    app.router.add_post("/gate", gate)
    app.router.add_post("/flaky/{percent:\\d+}", flaky)
    app.router.add_post("/control/{action:open|close|reset}", control)
    app.router.add_get("/stats", stats)
    app.router.add_get("/arrivals", arrivals)
    return app


class ReceiverProcess:
    """Start `python -m bench.receiver` on a free port; stop it on exit."""

    def __init__(self) -> None:
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout_s: float = 15.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not port_open(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the benchmark receiver did not listen on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self) -> ReceiverProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def _serve(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=512).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
