"""Helpers for tests that look at the stores: every failure of an integration, and Azure itself."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.failures.models import Failure, FailureFilter
from shared.failures.ports import FailureLog, SelectedFailure
from shared.services import Services
from shared.storage.azure import AzureStores

#: Later than any failure a test records: selecting up to it selects everything.
END_OF_TIME = datetime(9999, 12, 30, tzinfo=UTC)


async def selected_failures(store: FailureLog, integration: str) -> list[SelectedFailure]:
    """Every failure of the integration, newest first, with its version."""
    return [item async for item in store.select(integration, FailureFilter(), not_after=END_OF_TIME)]


async def stored_failures(store: FailureLog, integration: str) -> list[Failure]:
    """Every failure of the integration, newest first."""
    return [item.failure for item in await selected_failures(store, integration)]


def azure_stores(services: Services) -> AzureStores:
    """The Azure stores behind `services`, for tests that reach queues, tables or names directly."""
    stores = services.stores
    assert isinstance(stores, AzureStores), "these services run on the in-memory stores"
    return stores
