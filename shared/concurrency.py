"""Bounded concurrency that keeps each item's expected error beside the item."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=Exception)


async def each(
    items: Sequence[T], work: Callable[[T], Awaitable[object]], *, limit: int, errors: type[E]
) -> list[E | None]:
    """Run `work` on every item, at most `limit` at a time; per item, in order, the `errors`
    instance it raised, or None.

    Everything started is awaited before any other exception (a bug) propagates.
    """
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> E | None:
        async with semaphore:
            try:
                await work(item)
            except errors as exc:
                return exc
            return None

    outcomes = await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, errors):
            raise outcome
    return [outcome if isinstance(outcome, errors) else None for outcome in outcomes]
