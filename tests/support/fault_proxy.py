"""A fault-injecting TCP proxy for chaos tests: put it between the app and Azurite, then break it.

Azurite saves to disk only every 5 s, so killing it would lose writes it acknowledged (real
Azure Storage does not). Outages are therefore made here instead:

- `refuse()`: the listening socket closes and every open connection is reset, so new
  connections are refused at once (a network partition the client notices quickly);
- `hang()`: connections are accepted but nothing is forwarded either way (a black hole;
  the client only notices through its own timeouts);
- `heal()`: back to a transparent pipe on the same port.

The proxy runs its own event loop in a thread, so it keeps working whatever the test's
loop or the app's processes are doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from devtools.azurite import free_port

Mode = Literal["pass", "refuse", "hang"]


class FaultProxy:
    def __init__(self, upstream_port: int, *, listen_port: int | None = None, host: str = "127.0.0.1") -> None:
        self.upstream_port = upstream_port
        self.host = host
        self.port = listen_port or free_port()
        self.mode: Mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()

    # --- control (called from the test's thread) ---------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._open())
        return self

    def stop(self) -> None:
        self._call(self._close(reset=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def refuse(self) -> None:
        self.mode = "refuse"
        self._call(self._close(reset=True))

    def hang(self) -> None:
        self.mode = "hang"
        self._call(self._set_flowing(False))

    def heal(self) -> None:
        self.mode = "pass"
        self._call(self._set_flowing(True))
        self._call(self._open())

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    # --- the proxy (runs on its own loop) ----------------------------------------------------

    async def _set_flowing(self, flowing: bool) -> None:
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _open(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def _close(self, *, reset: bool) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if reset:
            for writer in list(self._connections):
                writer.transport.abort()
            self._connections.clear()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._connections.update({client_writer, upstream_writer})
        try:
            await asyncio.gather(self._pump(client_reader, upstream_writer), self._pump(upstream_reader, client_writer))
        finally:
            for writer in (client_writer, upstream_writer):
                self._connections.discard(writer)
                writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                # A hang holds data here: the connection stays open and silent.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            writer.write_eof()


class StorageProxies:
    """One proxy per Azurite service (blob, queue, table), switched together."""

    def __init__(self, blob: int, queue: int, table: int) -> None:
        self.blob, self.queue, self.table = FaultProxy(blob), FaultProxy(queue), FaultProxy(table)

    @property
    def all(self) -> tuple[FaultProxy, FaultProxy, FaultProxy]:
        return self.blob, self.queue, self.table

    def start(self) -> StorageProxies:
        for proxy in self.all:
            proxy.start()
        return self

    def stop(self) -> None:
        for proxy in self.all:
            proxy.stop()

    def refuse(self) -> None:
        for proxy in self.all:
            proxy.refuse()

    def hang(self) -> None:
        for proxy in self.all:
            proxy.hang()

    def heal(self) -> None:
        for proxy in self.all:
            proxy.heal()


@contextmanager
def storage_proxies(blob: int, queue: int, table: int) -> Iterator[StorageProxies]:
    proxies = StorageProxies(blob, queue, table).start()
    try:
        yield proxies
    finally:
        proxies.stop()
