"""SFTP source (asyncssh): files matching a pattern in one directory, read, then deleted or moved.

The server's host key is pinned by the config (`host_key`: the public key, or its SHA256
fingerprint) and checked on every connection; nothing is ever trusted on first use, and no
known_hosts file, agent or SSH config of the machine is read. The host name is resolved here and
every address judged by the egress policy before a socket is opened, and the connection goes to
the very address that was judged (as the HTTP client does).

An item's key is the file's name, size and modification time. A file whose size or time changes
while it is read is still being written: the read fails (transiently) and the file is taken by a
later run. A connection that breaks is opened again by the next operation, so endpoint retry
can carry on where it broke.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncssh

from shared.egress import EgressPolicy, IPAddress, literal_address
from shared.errors import EgressRefused, PermanentPickupError, TransientPickupError
from shared.pickup.models import SftpSource, describe
from shared.pickup.ports import ItemContent, SourceItem

T = TypeVar("T")

# asyncssh logs every connection, channel and SFTP request at INFO: with a source run every minute
# that would drown the app's own lines. Its warnings and errors still come through.
logging.getLogger("asyncssh").setLevel(logging.WARNING)

#: Looks up an app setting by name; None when it is not set.
SettingResolver = Callable[[str], str | None]
#: Host name, port → the addresses to try.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

DEFAULT_TIMEOUT_S = 30.0


async def resolve(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TransientPickupError(f"cannot resolve {host}: {exc}") from exc
    addresses: dict[IPAddress, None] = {}
    for *_, sockaddr in answers:
        address = literal_address(str(sockaddr[0]))
        if address is not None:
            addresses[address] = None
    if not addresses:
        raise TransientPickupError(f"cannot resolve {host}: no address")
    return list(addresses)


class _PinnedHostKey(asyncssh.SSHClient):
    """Accepts exactly the configured host key, and remembers what the server presented."""

    def __init__(self, expected: str) -> None:
        self._expected = expected.strip()
        self.presented: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        fingerprint = key.get_fingerprint("sha256")
        self.presented = fingerprint
        if self._expected.startswith("SHA256:"):
            return fingerprint.rstrip("=") == self._expected.rstrip("=")
        expected_parts = self._expected.split()
        presented_parts = key.export_public_key("openssh").decode().split()
        return expected_parts[:2] == presented_parts[:2]


@dataclass(frozen=True)
class _File:
    path: str
    name: str
    size: int
    mtime: int


class SftpReader:
    rereadable = True

    def __init__(
        self,
        source: SftpSource,
        *,
        egress: EgressPolicy,
        resolve_setting: SettingResolver,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        resolver: Resolver = resolve,
    ) -> None:
        self.source = source
        self._egress = egress
        self._resolve_setting = resolve_setting
        self._timeout_s = timeout_s
        self._resolver = resolver
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self.target = describe(source)

    # --- the connection ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self._client()

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        source = self.source
        options = self._credentials()
        addresses = await self._resolver(source.host, source.port)
        for address in addresses:
            problem = self._egress.check_address(address)
            if problem is not None:
                raise EgressRefused(f"{self.target}: not connecting: {problem}")
        pinned = _PinnedHostKey(source.host_key)
        error: Exception = TransientPickupError(f"{self.target}: cannot connect")
        for address in addresses:
            try:
                connection = await asyncssh.connect(
                    str(address),
                    source.port,
                    username=source.username,
                    client_factory=lambda: pinned,
                    # Trust nothing by default; `validate_host_public_key` decides.
                    known_hosts=([], [], []),
                    agent_path=None,
                    config=None,
                    connect_timeout=self._timeout_s,
                    login_timeout=self._timeout_s,
                    keepalive_interval=self._timeout_s,
                    **options,
                )
            except asyncssh.HostKeyNotVerifiable as exc:
                presented = f"; it presented {pinned.presented}" if pinned.presented else ""
                raise PermanentPickupError(
                    f"{self.target}: host key refused: it is not the configured host_key{presented}"
                ) from exc
            except asyncssh.PermissionDenied as exc:
                raise PermanentPickupError(f"{self.target}: login refused for {source.username!r}") from exc
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                error = TransientPickupError(f"{self.target}: cannot connect: {_reason(exc)}")
                continue
            try:
                self._sftp = await asyncio.wait_for(connection.start_sftp_client(), self._timeout_s)
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                connection.abort()
                raise TransientPickupError(f"{self.target}: no SFTP session: {_reason(exc)}") from exc
            self._connection = connection
            return self._sftp
        raise error

    def _credentials(self) -> dict[str, object]:
        source = self.source
        options: dict[str, object] = {"password": None, "client_keys": None}
        if source.password_setting is not None:
            options["password"] = self._secret(source.password_setting)
        if source.private_key_setting is not None:
            text = self._secret(source.private_key_setting)
            try:
                options["client_keys"] = [asyncssh.import_private_key(text)]
            except (asyncssh.KeyImportError, ValueError) as exc:
                # The key itself never appears in an error.
                raise PermanentPickupError(
                    f"{self.target}: app setting {source.private_key_setting!r} is not an unencrypted private key"
                ) from exc
        return options

    def _secret(self, name: str) -> str:
        refused = self._egress.check_setting_reference(name)
        if refused is not None:
            # Save time refuses this; a config written around the API must still never send the setting.
            raise EgressRefused(f"{self.target}: {refused.replace('references', 'names')}")
        value = self._resolve_setting(name)
        if not value:
            raise PermanentPickupError(f"{self.target}: app setting {name!r} is not set")
        return value

    async def close(self) -> None:
        sftp, connection = self._sftp, self._connection
        self._sftp = self._connection = None
        if sftp is not None:
            sftp.exit()
        if connection is not None:
            connection.close()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await connection.wait_closed()
            except (OSError, asyncssh.Error, TimeoutError):
                pass  # going away anyway

    def _broken(self) -> None:
        """Drop a connection that failed; the next operation opens a new one."""
        connection = self._connection
        self._sftp = self._connection = None
        if connection is not None:
            connection.abort()

    async def _call(self, what: str, operation: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        sftp = await self._client()
        try:
            async with asyncio.timeout(self._timeout_s * 4):
                return await operation(sftp)
        except asyncssh.SFTPNoSuchFile as exc:
            raise PermanentPickupError(f"{self.target}: {what}: no such file or directory") from exc
        except asyncssh.SFTPPermissionDenied as exc:
            raise PermanentPickupError(f"{self.target}: {what}: permission denied") from exc
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            self._broken()
            raise TransientPickupError(f"{self.target}: {what}: {_reason(exc)}") from exc

    # --- the items --------------------------------------------------------------------------------

    async def list(self, limit: int) -> list[SourceItem]:
        source = self.source
        names = await self._call("list", lambda sftp: sftp.readdir(source.path))
        files = []
        for entry in names:
            name = str(entry.filename)
            attrs = entry.attrs
            regular = attrs.permissions is not None and stat.S_ISREG(attrs.permissions)
            if not regular or not source.matches(name):
                continue
            files.append(_File(posixpath.join(source.path, name), name, int(attrs.size or 0), int(attrs.mtime or 0)))
        # Oldest first, so a backlog drains in the order it arrived.
        files.sort(key=lambda f: (f.mtime, f.name))
        return [SourceItem(key=_key(f), name=f.name, size=f.size, handle=f) for f in files[:limit]]

    async def read(self, item: SourceItem) -> ItemContent:
        listed = _file(item)

        async def read(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(listed.path, "rb") as handle:
                data: bytes = await handle.read()
            after = await sftp.stat(listed.path)
            if len(data) != after.size or int(after.mtime or 0) != listed.mtime:
                raise _StillWritten()
            return data

        try:
            data = await self._call(f"read {listed.name}", read)
        except _StillWritten:
            raise TransientPickupError(f"{self.target}: {listed.name} changed while it was read") from None
        return ItemContent(data=data, content_type=None, key=item.key, headers={})

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        listed, source = _file(item), self.source

        async def remove(sftp: asyncssh.SFTPClient) -> None:
            try:
                if source.after == "move":
                    target = posixpath.join(source.move_to, listed.name)
                    try:
                        # Replaces a file of the same name in the archive (an earlier, identical pick).
                        await sftp.posix_rename(listed.path, target)
                    except asyncssh.SFTPOpUnsupported:
                        await sftp.rename(listed.path, target)
                else:
                    await sftp.remove(listed.path)
            except asyncssh.SFTPNoSuchFile:
                if source.after == "move" and await sftp.exists(listed.path):
                    raise  # the archive directory is missing
                # Gone already: removed by an earlier attempt whose answer was lost.

        await self._call(f"remove {listed.name}", remove)

    async def give_back(self, item: SourceItem) -> None:
        """Nothing is locked."""


class _StillWritten(Exception):
    pass


def _key(listed: _File) -> str:
    return f"{listed.name}\n{listed.size}\n{listed.mtime}"


def _file(item: SourceItem) -> _File:
    handle = item.handle
    assert isinstance(handle, _File), "an item this reader listed"
    return handle


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
