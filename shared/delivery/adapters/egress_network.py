"""The network layer under the shared httpx client: resolve, vet every address, connect to a vetted one.

Checking a host name before the request and letting the client resolve it again to connect
leaves a window (DNS rebinding: the second answer is 127.0.0.1). So the check sits where the
socket is opened: `VettedNetworkBackend.connect_tcp` resolves the name itself, refuses the
connection when any address it got is refused by the `EgressPolicy`, and connects to the very
address it checked. TLS still verifies, and sends SNI for, the host name (httpcore passes the
URL's host as `server_hostname`), and the Host header keeps the name. Every new connection is
checked; a pooled connection stays with the address it was checked against.
"""

from __future__ import annotations

import math
import select
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from shared.egress import EgressPolicy, IPAddress, literal_address
from shared.errors import EgressRefused

#: Host name, port → the addresses to try, in order.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
#: httpcore's SOCKET_OPTION, restated (it is not exported).
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address resolves to itself), without duplicates."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses: dict[IPAddress, None] = {}
    for *_, sockaddr in answers:
        address = literal_address(str(sockaddr[0]))
        if address is not None:
            addresses[address] = None
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}: no address")
    return list(addresses)


def is_socket_readable(sock: socket.socket) -> bool:
    """httpcore's test of a pooled connection: readable while idle means the server closed it (or is gone)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _KnownSocketStream(httpcore.AsyncNetworkStream):
    """A connected stream that remembers its socket.

    httpcore asks every pooled connection whether its socket is readable (closed by the server)
    each time it hands out or takes back a connection, and the AnyIO stream answers by building
    its whole table of typed attributes to find the socket: with a few dozen connections that
    was a fifth of the engine's CPU per delivery (issue 15's profile). The socket does not change
    while the stream lives, so it is looked up once.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore's
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore's
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        return _KnownSocketStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        if info == "socket" and self._socket is not None:
            return self._socket
        return self._inner.get_extra_info(info)


class VettedNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(
        self,
        policy: EgressPolicy,
        *,
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()
        self._resolve = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface: the connect timeout
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout} s") from None
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in addresses:
            problem = self._policy.check_address(address)
            if problem is not None:
                # One refused answer refuses the name: a record set mixing public and internal
                # addresses is how rebinding attacks hedge, and no real receiver needs it.
                target = "" if literal_address(host) is not None else f" to {host}"
                raise EgressRefused(f"not connecting{target}: {problem}; nothing was sent")
        options = list(socket_options or [])
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            remaining = None if timeout is None else max(0.0, deadline - time.monotonic())
            try:
                stream = await self._inner.connect_tcp(
                    str(address), port, timeout=remaining, local_address=local_address, socket_options=options
                )
                return _KnownSocketStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("not connecting: Unix sockets are not an egress destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class VettedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, with its connection pool on a `VettedNetworkBackend`.

    httpx 0.28 does not pass `network_backend` through to httpcore, so the pool is rebuilt here
    with the same settings; `test_the_shared_client_connects_only_through_the_vetted_backend`
    fails if a new httpx stops using `_pool`.
    """

    def __init__(
        self, policy: EgressPolicy, *, limits: httpx.Limits, backend: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend or VettedNetworkBackend(policy),
        )
