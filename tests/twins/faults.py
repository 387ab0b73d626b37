"""What every twin shares: armed faults, call counts, and one await per call.

A twin's public method runs inside `async with self.call("name")`: an armed fault for that method
is raised there (the store failing as the real one would, e.g. `StorageUnavailable`), the call is
counted, and the method yields to the event loop once, as real I/O would. The yield is what lets
concurrency tests interleave (20 concurrent job starts, a retry batch's bounded sends); the state
change after it happens without another await, so a twin's check-and-set is atomic like a
conditional write.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class _Armed:
    error: BaseException
    #: Calls left that raise it; None: every call until disarmed (an outage).
    times: int | None
    #: Calls left that still succeed before it starts raising.
    after: int


class Twin:
    """The base of every twin: `arm` a fault, read `calls` and the most calls in flight at once."""

    def __init__(self) -> None:
        self._armed: dict[str, _Armed] = {}
        #: Calls per method name, faulted ones included.
        self.calls: Counter[str] = Counter()
        #: The most calls of one method that were in flight at the same time.
        self.most_in_flight: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()

    def arm(self, method: str, error: BaseException, *, times: int | None = 1, after: int = 0) -> None:
        """After `after` more calls succeed, the next `times` calls of `method` raise `error` (every call
        from then on when `times` is None)."""
        if not callable(getattr(self, method, None)) or method.startswith("_"):
            raise AttributeError(f"{type(self).__name__} has no method {method!r} to arm")
        if (times is not None and times < 1) or after < 0:
            raise ValueError("times must be at least 1 (or None for every call), after at least 0")
        self._armed[method] = _Armed(error, times, after)

    def disarm(self, method: str | None = None) -> None:
        """Clear the fault armed on `method` (every fault when None)."""
        if method is None:
            self._armed.clear()
        else:
            self._armed.pop(method, None)

    @asynccontextmanager
    async def call(self, method: str) -> AsyncIterator[None]:
        self.calls[method] += 1
        armed = self._armed.get(method)
        if armed is not None and armed.after > 0:
            armed.after -= 1
        elif armed is not None:
            if armed.times is not None:
                armed.times -= 1
                if armed.times == 0:
                    del self._armed[method]
            raise armed.error
        self._in_flight[method] += 1
        self.most_in_flight[method] = max(self.most_in_flight[method], self._in_flight[method])
        try:
            await asyncio.sleep(0)
            yield
        finally:
            self._in_flight[method] -= 1
