"""A real SFTP server for tests: asyncssh's server on 127.0.0.1, chrooted to a temporary directory.

It has its own host key (`host_key`, `fingerprint`), one user who may log in with a password or
an authorised public key, and can be told to drop the connection in the middle of reading a file
(`drop_reading(name, times)`): the server aborts the connection once the client asks for a block
past the first, as a server that dies or a network that breaks mid-transfer would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncssh

USERNAME = "rebound"
PASSWORD = "correct horse battery staple"
#: The server answers a read with at most this many bytes, so a larger file takes several requests.
BLOCK = 16 * 1024


class _Auth(asyncssh.SSHServer):
    def __init__(self, server: SftpServer) -> None:
        self._server = server

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USERNAME and password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        return self._server.client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        expected = self._server.client_key
        return username == USERNAME and expected is not None and key.export_public_key() == expected.export_public_key()


class _Sftp(asyncssh.SFTPServer):
    def __init__(self, chan: Any, server: SftpServer) -> None:
        super().__init__(chan, chroot=str(server.root).encode())
        self._server = server
        self._paths: dict[int, str] = {}

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        handle = super().open(path, pflags, attrs)
        self._paths[id(handle)] = os.path.basename(path.decode())
        return handle

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        name = self._paths.get(id(file_obj), "")
        drops = self._server.drops.get(name, 0)
        if drops and offset >= BLOCK:
            self._server.drops[name] = drops - 1
            self._server.dropped += 1
            self.connection.abort()
        # At most one block per request, as servers may answer: the client asks again for the rest.
        data: bytes = super().read(file_obj, offset, min(size, BLOCK))  # type: ignore[assignment]
        return data


class SftpServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key: asyncssh.SSHKey | None = None
        self.drops: dict[str, int] = {}
        self.dropped = 0
        self.port = 0
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def host_key(self) -> str:
        """The server's public key as a known_hosts entry would hold it."""
        return self.key.export_public_key("openssh").decode().strip()

    @property
    def fingerprint(self) -> str:
        return self.key.get_fingerprint("sha256")

    def authorise(self, client_key: asyncssh.SSHKey) -> None:
        self.client_key = client_key

    def drop_reading(self, name: str, times: int) -> None:
        """The next `times` reads of `name` break off after the first block."""
        self.drops[name] = times

    def put(self, relative: str, data: bytes) -> Path:
        path = self.root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def files(self, directory: str) -> list[str]:
        return sorted(p.name for p in (self.root / directory.lstrip("/")).iterdir() if p.is_file())

    async def start(self) -> SftpServer:
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[self.key],
            server_factory=lambda: _Auth(self),
            sftp_factory=lambda chan: _Sftp(chan, self),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()
        return self

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
