"""Rate limits across instances: tokens claimed in blocks from shared slots, each token a start time.

Time is cut into slots (a second for a whole `per_second`, ten seconds otherwise) and slot n of an
integration holds `capacity` tokens in storage (`RateSlots`). An instance that needs a token claims a
block of them (a quarter of the slot, at least one) with one conditional write, and token i of a slot
is due at `slot start + i × slot length / capacity`: attempts are spread over the slot, not bunched at
its start, and a token claimed more than one interval after it was due is void rather than used at
once. So across every instance at most `capacity` attempts start per slot, and at most one more in
any sliding slot-length (given clocks in sync); a token an instance claimed but could not use in time
is lost, which is why the rate under load is a little under the limit, never over it.

A caller waits for its token in process up to `max_wait_s`; past that it gets None and the message
goes back on `inbound` with a visibility delay instead of holding an invocation.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.control.models import RateLimitPolicy
from shared.control.ports import RateSlots

#: Claims look this many slots ahead at most (bounded further by the caller's wait).
MAX_SLOTS_AHEAD = 4


@dataclass(frozen=True)
class _Token:
    due: float
    #: The end of the token's slot: an unused token is void after it.
    void_at: float


class RateLimiter:
    def __init__(
        self,
        slots: RateSlots,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._slots = slots
        self._clock = clock
        self._sleep = sleep
        self._tokens: dict[str, deque[_Token]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def acquire(self, integration: str, policy: RateLimitPolicy, *, max_wait_s: float) -> float | None:
        """Wait for the next token and return the seconds waited; None when none is due within `max_wait_s`."""
        lock = self._locks.setdefault(integration, asyncio.Lock())
        async with lock:
            token = await self._next_token(integration, policy, max_wait_s)
        if token is None:
            return None
        wait_s = max(0.0, token.due - self._clock())
        if wait_s > 0:
            await self._sleep(wait_s)
        return wait_s

    async def wait_turn(self, integration: str, policy: RateLimitPolicy) -> float:
        """Wait however long it takes for a token (an attempt already under way: endpoint retries); seconds waited."""
        waited = 0.0
        while True:
            got = await self.acquire(integration, policy, max_wait_s=MAX_SLOTS_AHEAD * policy.slot_s)
            if got is not None:
                return waited + got
            await self._sleep(policy.slot_s)
            waited += policy.slot_s

    async def _next_token(self, integration: str, policy: RateLimitPolicy, max_wait_s: float) -> _Token | None:
        tokens = self._tokens.setdefault(integration, deque())
        now = self._clock()
        while tokens and tokens[0].void_at <= now:
            tokens.popleft()
        if not tokens:
            tokens.extend(await self._claim(integration, policy, now, max_wait_s))
        if not tokens or tokens[0].due - now > max_wait_s:
            return None
        return tokens.popleft()

    async def _claim(self, integration: str, policy: RateLimitPolicy, now: float, max_wait_s: float) -> list[_Token]:
        slot_s, capacity = policy.slot_s, policy.capacity
        block = max(1, math.ceil(capacity / 4))
        current = int(now // slot_s)
        ahead = min(MAX_SLOTS_AHEAD, math.ceil(max_wait_s / slot_s))
        step = slot_s / capacity
        for slot in range(current, current + ahead + 1):
            start_s = slot * slot_s
            if start_s - now > max_wait_s:
                break
            for _ in range(capacity // block + 1):
                first, taken = await self._slots.claim(integration, slot, capacity=capacity, want=block)
                if not taken:
                    break
                # A token whose time passed more than one interval ago is void: used now it would bunch
                # with the tokens due now, and a receiver would see a burst above the rate.
                tokens = [
                    _Token(due=start_s + index * step, void_at=start_s + slot_s)
                    for index in range(first, first + taken)
                    if start_s + index * step >= now - step
                ]
                if tokens:
                    return tokens
        return []
