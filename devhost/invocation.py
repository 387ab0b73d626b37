"""Call a user function the way the Python worker does, and log one line per invocation.

Async functions run on the host's event loop; sync functions run in a thread pool sized
like the worker's (PYTHON_THREADPOOL_THREAD_COUNT, else Python's default), so a blocking
handler never stalls HTTP serving or queue polling.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from devhost.errors import StartupError
from devhost.functions import FunctionEntry

logger = logging.getLogger(__name__)

#: The worker's setting for the size of its sync-function thread pool.
THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
MAX_THREAD_COUNT = 32


@dataclass(frozen=True)
class InvocationResult:
    invocation_id: str
    value: Any = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


class FunctionInvoker(Protocol):
    """What triggers need from the invoker (tests substitute a fake)."""

    async def invoke(self, function: FunctionEntry, trigger_value: Any) -> InvocationResult: ...


def thread_count(settings: Mapping[str, str]) -> int | None:
    raw = settings.get(THREAD_COUNT_SETTING, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_THREAD_COUNT:
        raise StartupError(f"{THREAD_COUNT_SETTING}={raw!r} must be a whole number from 1 to {MAX_THREAD_COUNT}")
    return int(raw)


class Invoker:
    def __init__(self, max_threads: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix="devhost-function")
        self._running_in_threads = 0
        self._lock = threading.Lock()
        #: Invocations finished since start (for the progress line).
        self.completed = 0

    @property
    def threads_busy(self) -> int:
        """Sync invocations still running; they cannot be cancelled, only waited for or abandoned."""
        with self._lock:
            return self._running_in_threads

    async def invoke(self, function: FunctionEntry, trigger_value: Any) -> InvocationResult:
        """Run the function with its trigger bound by name; exceptions become a failed result.

        Cancellation (shutdown past the grace period) propagates to the caller.
        """
        invocation_id = str(uuid.uuid4())
        kwargs = {function.trigger_arg: trigger_value}
        started = time.perf_counter()
        try:
            if function.is_async:
                value = await function.user_function(**kwargs)
            else:
                value = await self._run_in_thread(function, kwargs)
        except asyncio.CancelledError:
            self._log(function, invocation_id, started, "Cancelled")
            raise
        except Exception as error:
            self.completed += 1
            self._log(function, invocation_id, started, "Failed", error)
            return InvocationResult(invocation_id, error=error)
        self.completed += 1
        self._log(function, invocation_id, started, "Succeeded")
        return InvocationResult(invocation_id, value=value)

    async def _run_in_thread(self, function: FunctionEntry, kwargs: dict[str, Any]) -> Any:
        def call() -> Any:
            with self._lock:
                self._running_in_threads += 1
            try:
                return function.user_function(**kwargs)
            finally:
                with self._lock:
                    self._running_in_threads -= 1

        # Copying the context keeps contextvars (e.g. logging correlation) visible in the thread.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(context.run, call))

    @staticmethod
    def _log(
        function: FunctionEntry, invocation_id: str, started: float, outcome: str, error: BaseException | None = None
    ) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        if error is None:
            logger.info(
                "Executed function=%s trigger=%s invocation_id=%s outcome=%s duration_ms=%.0f",
                function.name,
                function.trigger_type,
                invocation_id,
                outcome,
                duration_ms,
            )
            return
        logger.error(
            "Executed function=%s trigger=%s invocation_id=%s outcome=%s duration_ms=%.0f error=%s",
            function.name,
            function.trigger_type,
            invocation_id,
            outcome,
            duration_ms,
            type(error).__name__,
            exc_info=error,
        )

    def close(self) -> None:
        """Release idle threads; a still-running sync invocation is abandoned, not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)
