"""The two backends the contract suite runs on: the twins, and the Azure stores on the session's Azurite.

A `Backend` is the bundle of stores plus the few things a contract test needs that the Protocols
rightly do not offer: changing a failure behind the store's back (so a version goes stale), and
putting a message on a poison queue (the host does that, never the app).

Only `azure_backend` knows the Azure store classes (shared/storage/, issue 14 step B1a); it is
imported for the `azurite` parameter alone, so the memory half never needs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from shared.delivery.ports import ErrorWindow
from shared.failures.models import Failure
from shared.recovery.models import Flow
from shared.stores import Stores
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores


@dataclass(frozen=True)
class Backend:
    name: str
    stores: Stores
    #: The error window without any cache in front (a cache is the domain's, not the store's).
    error_window: ErrorWindow
    #: Change a stored failure's reason behind the store's back: versions read before go stale.
    edit_reason: Callable[[Failure, str], Awaitable[None]]
    #: Put a message on the poison queue of `inbound` or `jobs`, as the host does.
    poison: Callable[[Flow, str], Awaitable[None]]
    #: Let `seconds` pass for the store (the twin's clock moves; Azurite's is the wall clock, so this waits).
    elapse: Callable[[float], Awaitable[None]]


def azure_differs(request: pytest.FixtureRequest, backend: Backend, reason: str) -> None:
    """Mark this run expected to fail on Azurite: a difference the contract suite found in the Azure
    store, handed to its owner. Strict: once the store is fixed the test passes and the mark must go."""
    if backend.name == "azurite":
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"Azure store differs: {reason}"))


def memory_backend(clock: FakeTime, *, inbound_shards: int = 1) -> Backend:
    stores = MemoryStores(clock.now, inbound_shards=inbound_shards)

    async def elapse(seconds: float) -> None:
        clock.advance(seconds)

    async def edit_reason(failure: Failure, reason: str) -> None:
        stores.failures.edit(failure, reason=reason)

    async def poison(flow: Flow, text: str) -> None:
        (stores.inbound_poison if flow == "inbound" else stores.jobs_poison).put(text)

    return Backend("memory", stores, stores.error_window, edit_reason, poison, elapse)


@asynccontextmanager
async def azure_backend(environ: dict[str, str]) -> AsyncIterator[Backend]:
    """The Azure stores of a fresh prefix on the session's Azurite (B1a's `AzureStores`)."""
    from shared.settings import Settings
    from shared.storage.azure import AzureStores
    from shared.storage.error_window_table import TableErrorWindow
    from shared.storage.names import poison_queue

    stores = AzureStores.build(Settings.from_env(environ))
    account, names = stores.account, stores.names
    failures_table = account.tables.table(names.failures)

    async def edit_reason(failure: Failure, reason: str) -> None:
        row = await failures_table.get(failure.integration, failure.id)
        assert row is not None, f"failure {failure.id} is not stored"
        await failures_table.update({**row, "Reason": reason}, etag=str(row["_etag"]))

    async def poison(flow: Flow, text: str) -> None:
        queue = names.inbound if flow == "inbound" else names.jobs_queue
        await account.queues.send(poison_queue(queue), text)

    async def elapse(seconds: float) -> None:
        await asyncio.sleep(seconds)

    window = TableErrorWindow(account.tables.table(names.error_window), cache_ttl_s=0)
    try:
        yield Backend("azurite", stores, window, edit_reason, poison, elapse)
    finally:
        await stores.close()
