"""The composition root: settings → storage accounts → stores, built once per event loop.

Importing the app must never raise (an import error fails worker indexing and no function
loads), so nothing here runs at import time: handlers call `get_services()`.
"""

from __future__ import annotations

import asyncio
import weakref

from shared.settings import Settings
from shared.storage.account import StorageAccount
from shared.storage.integrations import IntegrationStore
from shared.storage.names import StorageNames


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        storage: StorageAccount | None = None,
        recovery_storage: StorageAccount | None = None,
    ) -> None:
        self.settings = settings
        self.names = StorageNames(settings.prefix)
        self.storage = storage or StorageAccount(settings.storage, timeout_s=settings.storage_timeout_s)
        if recovery_storage is None:
            recovery_connection = settings.recovery_storage
            same_account = recovery_connection.name == self.storage.connection.name
            recovery_storage = (
                self.storage
                if same_account
                else StorageAccount(recovery_connection, timeout_s=settings.storage_timeout_s)
            )
        self.recovery_storage = recovery_storage
        self.integrations = IntegrationStore(self.storage.tables.table(self.names.integrations))

    async def close(self) -> None:
        await self.storage.close()
        if self.recovery_storage is not self.storage:
            await self.recovery_storage.close()


# Azure SDK aio clients are bound to the loop that first used them; the Functions worker runs one
# loop, tests run many, so the cache is per loop.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Services] = weakref.WeakKeyDictionary()


def get_services() -> Services:
    loop = asyncio.get_running_loop()
    services = _by_loop.get(loop)
    if services is None:
        services = Services(Settings.from_env())
        _by_loop[loop] = services
    return services


async def reset_services() -> None:
    """Close and forget this loop's services (tests, and settings changes in devhost)."""
    services = _by_loop.pop(asyncio.get_running_loop(), None)
    if services is not None:
        await services.close()
