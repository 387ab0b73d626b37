"""`AzureStores`: every store on Azure Storage, names from settings, the recovery backend chosen.

The one place that knows which table, queue and container each store lives in (`StorageNames`)
and on which account: the main flow on AzureWebJobsStorage, the recovery flow on RecoveryStorage
(the same account locally) or on Service Bus with RECOVERY_BACKEND=servicebus. Each store is built
on first use, so a recovery flow whose connection is wrong fails only when it is needed.
Integration tests that need Azure itself reach it through `account`, `recovery_account` and `names`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

from shared.operability.health import HealthProbe
from shared.recovery.ports import MessageSource, RecoveryFlow
from shared.settings import RecoveryBackend, Settings
from shared.storage.account import StorageAccount
from shared.storage.alert_tables import TableAlertLog, TableAlertRules
from shared.storage.audit_table import TableAuditStore
from shared.storage.clients import build_service_bus_client
from shared.storage.control_tables import TableControlStates, TableHeldMessages, TableRateSlots
from shared.storage.error_window_table import TableErrorWindow
from shared.storage.failure_table import TableFailureStore
from shared.storage.flow_probe import StorageFlowProbe
from shared.storage.integration_table import TableIntegrationStore
from shared.storage.job_counter_table import TableSettleCounts
from shared.storage.job_table import TableJobStore
from shared.storage.message_queue import StorageMessageQueue
from shared.storage.names import StorageNames, poison_queue
from shared.storage.payload_blobs import BlobPayloadStore
from shared.storage.pickup_tables import TablePickupStates, TableSeenItems
from shared.storage.recovery_queue import StorageQueueSource, StorageRecoveryFlow
from shared.storage.recovery_service_bus import ServiceBusRecoveryFlow
from shared.storage.sweep_state import TableSweepState
from shared.storage.timeline_table import TableTimelineStore


class AzureStores:
    def __init__(self, settings: Settings, account: StorageAccount, recovery_account: StorageAccount) -> None:
        self.settings = settings
        self.names = StorageNames(settings.prefix)
        self.account = account
        self.recovery_account = recovery_account

    @classmethod
    def build(cls, settings: Settings) -> AzureStores:
        """The accounts from settings: RecoveryStorage shares the main account's clients when it names the same."""
        account = StorageAccount(settings.storage, timeout_s=settings.storage_timeout_s)
        recovery_connection = settings.recovery_storage
        same_account = recovery_connection.name == account.connection.name
        recovery_account = (
            account if same_account else StorageAccount(recovery_connection, timeout_s=settings.storage_timeout_s)
        )
        return cls(settings, account, recovery_account)

    @cached_property
    def integrations(self) -> TableIntegrationStore:
        return TableIntegrationStore(self.account.tables.table(self.names.integrations))

    @cached_property
    def payloads(self) -> BlobPayloadStore:
        return BlobPayloadStore(self.account.blobs, self.names.payloads)

    @cached_property
    def failures(self) -> TableFailureStore:
        tables = self.account.tables
        return TableFailureStore(
            tables.table(self.names.failures), tables.table(self.names.failure_summary), self.payloads
        )

    @cached_property
    def jobs(self) -> TableJobStore:
        return TableJobStore(self.account.tables.table(self.names.jobs_table))

    @cached_property
    def settle_counts(self) -> TableSettleCounts:
        return TableSettleCounts(self.account.tables.table(self.names.job_counters))

    @cached_property
    def timeline(self) -> TableTimelineStore:
        return TableTimelineStore(self.account.tables.table(self.names.timeline))

    @cached_property
    def audit(self) -> TableAuditStore:
        return TableAuditStore(self.account.tables.table(self.names.audit))

    @cached_property
    def error_window(self) -> TableErrorWindow:
        return TableErrorWindow(self.account.tables.table(self.names.error_window))

    @cached_property
    def inbound(self) -> StorageMessageQueue:
        return StorageMessageQueue(self.account.queues, self.names.inbound)

    @cached_property
    def inbound_shards(self) -> Sequence[StorageMessageQueue]:
        shards = self.names.inbound_shards(self.settings.inbound_shards)
        return [self.inbound, *(StorageMessageQueue(self.account.queues, name) for name in shards[1:])]

    @cached_property
    def job_pages(self) -> StorageMessageQueue:
        return StorageMessageQueue(self.account.queues, self.names.jobs_queue)

    @cached_property
    def recovery(self) -> RecoveryFlow:
        settings = self.settings
        if settings.recovery_backend is RecoveryBackend.SERVICE_BUS:
            client = build_service_bus_client(settings.connection(settings.recovery_service_bus_connection))
            return ServiceBusRecoveryFlow(
                client, settings.recovery_service_bus_queue, timeout_s=settings.storage_timeout_s
            )
        account = self.recovery_account
        return StorageRecoveryFlow(account.queues, account.blobs, self.names.recovery, self.names.recovery_payloads)

    @cached_property
    def pickups(self) -> TablePickupStates:
        return TablePickupStates(self.account.tables.table(self.names.pickups))

    @cached_property
    def pickup_seen(self) -> TableSeenItems:
        return TableSeenItems(self.account.tables.table(self.names.pickup_seen))

    @cached_property
    def control_states(self) -> TableControlStates:
        return TableControlStates(self.account.tables.table(self.names.control))

    @cached_property
    def held(self) -> TableHeldMessages:
        return TableHeldMessages(self.account.tables.table(self.names.held))

    @cached_property
    def rate_slots(self) -> TableRateSlots:
        return TableRateSlots(self.account.tables.table(self.names.rate_limit))

    @cached_property
    def circuit_window(self) -> TableErrorWindow:
        return TableErrorWindow(self.account.tables.table(self.names.circuit_window))

    @cached_property
    def drain_requests(self) -> StorageMessageQueue:
        return StorageMessageQueue(self.account.queues, self.names.drain_queue)

    @cached_property
    def alert_rules(self) -> TableAlertRules:
        return TableAlertRules(self.account.tables.table(self.names.alert_rules))

    @cached_property
    def alert_log(self) -> TableAlertLog:
        return TableAlertLog(self.account.tables.table(self.names.alerts))

    @cached_property
    def alert_events(self) -> StorageMessageQueue:
        return StorageMessageQueue(self.account.queues, self.names.alert_events)

    @cached_property
    def poison(self) -> Sequence[MessageSource]:
        names = self.names
        queues = self.account.queues
        shards = names.inbound_shards(self.settings.inbound_shards)
        return [
            *(StorageQueueSource(queues, poison_queue(shard), "poison", "inbound") for shard in shards),
            StorageQueueSource(queues, poison_queue(names.jobs_queue), "poison", "jobs"),
        ]

    async def retired_shards(self) -> Sequence[MessageSource]:
        names, queues = self.names, self.account.queues
        current = set(names.inbound_shards(self.settings.inbound_shards))
        retired = [name for name in names.every_inbound_shard if name not in current]
        # One listing instead of a call per possible shard: most deployments have none of these queues.
        existing = set(await queues.list_queues(f"{names.inbound}-"))
        sources: list[MessageSource] = []
        for shard in retired:
            if shard in existing:
                sources.append(StorageQueueSource(queues, shard, "retired", "inbound", if_present=True))
            if poison_queue(shard) in existing:
                sources.append(StorageQueueSource(queues, poison_queue(shard), "poison", "inbound", if_present=True))
        return sources

    @cached_property
    def sweep_state(self) -> TableSweepState:
        return TableSweepState(self.account.tables.table(self.names.recovery_state))

    @cached_property
    def main_flow(self) -> StorageFlowProbe:
        return StorageFlowProbe(self.account.queues, self.names.health_probe, self.failures)

    @property
    def health_probes(self) -> Sequence[HealthProbe]:
        account, recovery, names = self.account, self.recovery_account, self.names
        return [
            ("storage.queues", lambda: account.queues.depth(names.inbound)),
            ("storage.tables", lambda: account.tables.ping()),
            ("storage.blobs", lambda: account.blobs.ping()),
            ("recovery.queues", lambda: recovery.queues.depth(names.recovery)),
        ]

    async def close(self) -> None:
        if "recovery" in self.__dict__:
            await self.recovery.close()
        await self.account.close()
        if self.recovery_account is not self.account:
            await self.recovery_account.close()
