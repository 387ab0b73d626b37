"""Start and stop the project's own Azurite (installed by npm into node_modules/).

Used by `make run` (disk-persisted under .azurite/) and by the test session fixture
(in-memory, free ports). Azurite is a Node process; we talk to it only over its ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent

#: The well-known Azurite development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

DEFAULT_PORTS = (10000, 10001, 10002)


@dataclass(frozen=True)
class AzuritePorts:
    blob: int
    queue: int
    table: int

    @classmethod
    def free(cls) -> AzuritePorts:
        blob, queue, table = (free_port() for _ in range(3))
        return cls(blob=blob, queue=queue, table=table)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_string(ports: AzuritePorts, host: str = "127.0.0.1") -> str:
    """An explicit connection string; azure-data-tables does not accept UseDevelopmentStorage=true."""
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{ports.blob}/{DEV_ACCOUNT_NAME};"
        f"QueueEndpoint=http://{host}:{ports.queue}/{DEV_ACCOUNT_NAME};"
        f"TableEndpoint=http://{host}:{ports.table}/{DEV_ACCOUNT_NAME};"
    )


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class AzuriteProcess:
    """One Azurite process serving blob, queue and table on the given ports."""

    def __init__(
        self,
        *,
        ports: AzuritePorts | None = None,
        location: Path | None = None,
        extent_memory_limit_mb: int = 1024,
        log_path: Path | None = None,
    ) -> None:
        self.ports = ports or AzuritePorts.free()
        self.location = location
        self.extent_memory_limit_mb = extent_memory_limit_mb
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.ports)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("Azurite is not running")
        return self._process.pid

    def command(self) -> list[str]:
        binary = PROJECT_DIR / "node_modules" / ".bin" / "azurite"
        if not binary.exists():
            raise FileNotFoundError(f"{binary} is missing: run `make install` (npm installs Azurite into the project)")
        cmd = [
            str(binary),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--blobPort",
            str(self.ports.blob),
            "--queuePort",
            str(self.ports.queue),
            "--tablePort",
            str(self.ports.table),
        ]
        if self.location is None:
            cmd += ["--inMemoryPersistence", "--extentMemoryLimit", str(self.extent_memory_limit_mb)]
        else:
            self.location.mkdir(parents=True, exist_ok=True)
            cmd += ["--location", str(self.location)]
        return cmd

    def start(self, timeout_s: float = 30.0) -> None:
        for port in (self.ports.blob, self.ports.queue, self.ports.table):
            if port_open(port):
                raise RuntimeError(f"port {port} is already in use; is another Azurite running?")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in a terminal reaches us, and we stop Azurite in order.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Azurite exited with code {self._process.returncode} during start-up")
            if all(port_open(p) for p in (self.ports.blob, self.ports.queue, self.ports.table)):
                return
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Azurite did not listen on {self.ports} within {timeout_s} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)

    def freeze(self) -> None:
        """SIGSTOP: Azurite keeps its sockets but answers nothing (used by chaos tests)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> AzuriteProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
