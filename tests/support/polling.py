"""Waiting for something that happens in another process, with a deadline instead of a sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def until(probe: Callable[[], Awaitable[Any]], expected: Any, timeout_s: float = 30.0) -> Any:
    """Poll `probe` every 0.2 s until it returns `expected`; fail with the last value after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value == expected:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r}")
        await asyncio.sleep(0.2)
