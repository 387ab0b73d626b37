"""Run devhost as a child process: for e2e tests, chaos tests and the `make run` launcher.

The child's stdout and stderr go to one log file; start-up is complete when the ready
line appears there. Every failure to start raises `DevhostStartError` carrying the last
lines of that log, so a broken app explains itself in the test output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from devhost.host import DEFAULT_GRACE_S
from devtools.azurite import PROJECT_DIR

READY_LINE = re.compile(r"^devhost ready: (?P<url>http://\S+) \((?P<count>\d+) functions\)$", re.MULTILINE)
_PORT_IN_URL = re.compile(r"^http://[^/]+:(?P<port>\d+)")

#: Importing the app and the Azure SDKs takes a second or two; allow for a loaded machine.
DEFAULT_START_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40


class DevhostStartError(RuntimeError):
    """devhost exited or stayed silent during start-up; the message ends with its log."""


class DevhostProcess:
    def __init__(
        self,
        app_dir: Path,
        env: Mapping[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        grace_s: float = DEFAULT_GRACE_S,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
        use_local_settings: bool = True,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.env = dict(env)
        self.host = host
        #: None picks a free port (the child binds port 0 and reports the port in its ready line).
        self.requested_port = port
        self.grace_s = grace_s
        self.start_timeout_s = start_timeout_s
        self.use_local_settings = use_local_settings
        self._owns_log = log_path is None
        self.log_path = log_path or self._temporary_log()
        self.base_url = ""
        self.port = 0
        self.function_count = 0
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _temporary_log() -> Path:
        handle, name = tempfile.mkstemp(prefix="devhost-", suffix=".log")
        os.close(handle)
        return Path(name)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("devhost is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "devhost",
            "--app-dir",
            str(self.app_dir),
            "--host",
            self.host,
            "--port",
            str(self.requested_port or 0),
            "--grace-s",
            str(self.grace_s),
            *([] if self.use_local_settings else ["--no-local-settings"]),
        ]

    def start(self) -> DevhostProcess:
        if self.running:
            raise RuntimeError("devhost is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_DIR,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a terminal's Ctrl-C reaches the launcher, which then stops us in order.
                start_new_session=True,
            )
        self._wait_until_ready(offset)
        return self

    def _wait_until_ready(self, offset: int) -> None:
        process = self._process
        if process is None:
            raise RuntimeError("devhost is not started")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            match = READY_LINE.search(self._read_log(offset))
            if match:
                self.base_url = match["url"]
                self.function_count = int(match["count"])
                port = _PORT_IN_URL.match(self.base_url)
                self.port = int(port["port"]) if port else 0
                return
            if process.poll() is not None:
                raise DevhostStartError(
                    f"devhost exited with code {process.returncode} during start-up; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.kill()
        raise DevhostStartError(
            f"devhost was not ready within {self.start_timeout_s} s; last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self._read_log().splitlines()[-lines:])

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGINT (graceful: in-flight invocations get the grace period), then SIGKILL if it hangs.

        Returns the exit code, or None if it was not running.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout_s if timeout_s is not None else self.grace_s + 10)
            except subprocess.TimeoutExpired:
                self.kill()
        code = process.wait()
        self._process = None
        if self._owns_log and code == 0:
            self.log_path.unlink(missing_ok=True)
        return code

    def kill(self) -> None:
        """SIGKILL, like a crashed host: in-flight messages reappear after their lease."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.kill()
        self._process.wait()

    def __enter__(self) -> DevhostProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
