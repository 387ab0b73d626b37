"""The composition root: settings → storage accounts → stores, built once per event loop.

Importing the app must never raise (an import error fails worker indexing and no function
loads), so nothing here runs at import time: handlers call `get_services()`.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import cached_property

from shared.config.cache import ConfigCache
from shared.delivery.adapters.registry import SenderRegistry
from shared.delivery.adapters.service_bus import build_service_bus_client
from shared.delivery.engine import DeliveryEngine
from shared.delivery.retry import EndpointRetryPolicy
from shared.jobs.models import JobLimits
from shared.jobs.runner import JobService
from shared.operability.health import HealthCheck, check_health
from shared.operability.telemetry import configure_telemetry
from shared.recovery.sweeper import Parker, RecoverySweeper
from shared.settings import RecoveryBackend, Settings
from shared.storage.account import StorageAccount
from shared.storage.error_window_table import ErrorWindow
from shared.storage.failure_table import FailureStore
from shared.storage.integration_table import IntegrationStore
from shared.storage.job_table import JobStore
from shared.storage.names import StorageNames
from shared.storage.payload_blobs import PayloadStore
from shared.storage.recovery_queue import RecoveryStore, ServiceBusRecoveryStore, StorageRecoveryStore


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
        self.egress = settings.egress_policy()

    @cached_property
    def payloads(self) -> PayloadStore:
        return PayloadStore(self.storage.blobs, self.names.payloads)

    @cached_property
    def failures(self) -> FailureStore:
        tables = self.storage.tables
        return FailureStore(tables.table(self.names.failures), tables.table(self.names.failure_summary), self.payloads)

    @cached_property
    def error_window(self) -> ErrorWindow:
        return ErrorWindow(self.storage.tables.table(self.names.error_window))

    @cached_property
    def configs(self) -> ConfigCache:
        """The engine's view of configs: cached briefly, misses included."""
        return ConfigCache(self.integrations)

    @cached_property
    def ingest_configs(self) -> ConfigCache:
        """Ingest's view: a just-created integration is accepted at once."""
        return ConfigCache(self.integrations, cache_misses=False)

    @cached_property
    def senders(self) -> SenderRegistry:
        return SenderRegistry(self.settings, egress=self.egress)

    @cached_property
    def engine(self) -> DeliveryEngine:
        settings = self.settings
        return DeliveryEngine(
            configs=self.configs,
            senders=self.senders,
            queues=self.storage.queues,
            inbound_queue=self.names.inbound,
            payloads=self.payloads,
            failures=self.failures,
            error_window=self.error_window,
            endpoint_policy=EndpointRetryPolicy(
                max_attempts=settings.endpoint_retry_max_attempts,
                base_delay_s=settings.endpoint_retry_base_delay_s,
                window_s=settings.endpoint_retry_window_s,
            ),
            parker=self.parker,
        )

    @cached_property
    def jobs(self) -> JobService:
        settings = self.settings
        return JobService(
            jobs=JobStore(self.storage.tables.table(self.names.jobs_table)),
            integrations=self.integrations,
            failures=self.failures,
            payloads=self.payloads,
            queues=self.storage.queues,
            inbound_queue=self.names.inbound,
            jobs_queue=self.names.jobs_queue,
            limits=JobLimits(
                page_size=settings.job_page_size,
                rate_per_s=settings.job_rate_limit_per_s,
                max_inbound_depth=settings.max_inbound_depth,
            ),
            parker=self.parker,
        )

    @cached_property
    def health(self) -> HealthCheck:
        timeout_s = self.settings.storage_timeout_s
        return HealthCheck(lambda: check_health(self.storage, self.recovery_storage, self.names, timeout_s=timeout_s))

    @cached_property
    def recovery_store(self) -> RecoveryStore:
        settings = self.settings
        if settings.recovery_backend is RecoveryBackend.SERVICE_BUS:
            client = build_service_bus_client(settings.connection(settings.recovery_service_bus_connection))
            return ServiceBusRecoveryStore(
                client, settings.recovery_service_bus_queue, timeout_s=settings.storage_timeout_s
            )
        account = self.recovery_storage
        return StorageRecoveryStore(account.queues, account.blobs, self.names.recovery, self.names.recovery_payloads)

    @cached_property
    def parker(self) -> Parker:
        return Parker(self.recovery_store, delay_s=self.settings.recovery_park_delay_s)

    @cached_property
    def sweeper(self) -> RecoverySweeper:
        settings = self.settings
        return RecoverySweeper(
            store=self.recovery_store,
            queues=self.storage.queues,
            names=self.names,
            payloads=self.payloads,
            failures=self.failures,
            jobs=self.jobs,
            state=self.storage.tables.table(self.names.recovery_state),
            max_reinserts=settings.recovery_max_reinserts,
            batch_size=settings.recovery_batch_size,
            max_inbound_depth=settings.max_inbound_depth,
        )

    async def close(self) -> None:
        if "recovery_store" in self.__dict__:
            await self.recovery_store.close()
        if "senders" in self.__dict__:
            await self.senders.aclose()
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
        settings = Settings.from_env()
        secret = settings.applicationinsights_connection_string
        configure_telemetry(secret.get_secret_value() if secret else None)
        services = Services(settings)
        _by_loop[loop] = services
    return services


async def reset_services() -> None:
    """Close and forget this loop's services (tests, and settings changes in devhost)."""
    services = _by_loop.pop(asyncio.get_running_loop(), None)
    if services is not None:
        await services.close()
