"""A real HTTP receiver on 127.0.0.1 for integration and e2e tests.

It answers from a script (status, headers, delay), one entry per request, the last entry
repeating, and records every request it got with its arrival time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    text: str = ""


@dataclass(frozen=True)
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, script: list[Answer] | None = None) -> None:
        self.script = script or [Answer()]
        self.requests: list[Received] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/in"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        index = len(self.requests)
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(Received(time.monotonic(), request.method, request.path, headers, body))
        answer = self.script[min(index, len(self.script) - 1)]
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        return web.Response(status=answer.status, headers=answer.headers, text=answer.text)

    async def start(self, port: int = 0) -> Receiver:
        """Listen on `port` (0: a free one); a stopped receiver may start again on its old port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"receiver got {len(self.requests)} requests, expected {count} within {timeout_s} s"
                )
            await asyncio.sleep(0.05)
        return self.requests
