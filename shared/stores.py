"""`Stores`: every store the domain works with, as one bundle `Services` is built from.

Each member is a Protocol its capability declares in its `ports.py`. `AzureStores`
(shared/storage/azure.py) is the bundle on Azure Storage (and Service Bus for the recovery flow
when RECOVERY_BACKEND=servicebus); tests build an in-memory bundle from tests/twins/. A Protocol
rather than a dataclass, so a bundle may build each store on first use: a recovery flow whose
connection is wrong must not break the app before anything needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.alerts.ports import AlertLog, AlertRules
from shared.audit.ports import AuditStore
from shared.config.ports import IntegrationStore
from shared.control.ports import ControlStates, HeldMessages, RateSlots
from shared.delivery.ports import ErrorWindow
from shared.failures.ports import FailureStore
from shared.jobs.ports import JobStore, SettleCounts
from shared.messages.ports import MessageQueue, PayloadStore
from shared.operability.health import HealthProbe
from shared.pickup.ports import PickupStates, SeenItems
from shared.recovery.ports import MainFlowProbe, MessageSource, RecoveryFlow, SweepState
from shared.timeline.ports import TimelineStore


class Stores(Protocol):
    @property
    def integrations(self) -> IntegrationStore: ...

    @property
    def failures(self) -> FailureStore: ...

    @property
    def jobs(self) -> JobStore: ...

    @property
    def settle_counts(self) -> SettleCounts:
        """Retry jobs' counters of how their resent messages settled (sharded by writer)."""
        ...

    @property
    def timeline(self) -> TimelineStore:
        """What happened to each message from its first failed attempt on."""
        ...

    @property
    def error_window(self) -> ErrorWindow: ...

    @property
    def audit(self) -> AuditStore: ...

    @property
    def payloads(self) -> PayloadStore: ...

    @property
    def inbound(self) -> MessageQueue:
        """The engine's queue `inbound`: shard 0, the one upstream systems write to."""
        ...

    @property
    def inbound_shards(self) -> Sequence[MessageQueue]:
        """Every queue the engine reads, `inbound` first, then `inbound-1` … (INBOUND_SHARDS)."""
        ...

    @property
    def job_pages(self) -> MessageQueue:
        """The `jobs` queue: one message per page of a job."""
        ...

    @property
    def recovery(self) -> RecoveryFlow: ...

    @property
    def pickups(self) -> PickupStates:
        """Per pickup source: the last run and the lease of the run going on."""
        ...

    @property
    def pickup_seen(self) -> SeenItems:
        """Items already picked (duplicate detection)."""
        ...

    @property
    def control_states(self) -> ControlStates:
        """Per integration: paused or not, the circuit breaker, the drain's lease."""
        ...

    @property
    def held(self) -> HeldMessages:
        """Messages of paused integrations, in arrival order."""
        ...

    @property
    def rate_slots(self) -> RateSlots:
        """The rate limits' token slots, shared by every instance."""
        ...

    @property
    def circuit_window(self) -> ErrorWindow:
        """Transient failures per integration per interval, for the circuit breakers (shared by all instances)."""
        ...

    @property
    def drain_requests(self) -> MessageQueue:
        """The `drain` queue: one message per page of a hold being drained."""
        ...

    @property
    def alert_rules(self) -> AlertRules: ...

    @property
    def alert_log(self) -> AlertLog:
        """The alerts that fired."""
        ...

    @property
    def alert_events(self) -> MessageQueue:
        """The `alert-events` queue: events that ask for an evaluation."""
        ...

    @property
    def poison(self) -> Sequence[MessageSource]:
        """The queues the host moves a message to after repeated failed attempts (recovery material):
        every inbound shard's and `jobs`'."""
        ...

    async def retired_shards(self) -> Sequence[MessageSource]:
        """Inbound shards beyond INBOUND_SHARDS that still exist, and their poison queues: what was left
        there when the setting was lowered, which no trigger reads any more (the sweep moves it)."""
        ...

    @property
    def sweep_state(self) -> SweepState: ...

    @property
    def main_flow(self) -> MainFlowProbe:
        """Whether the main flow can take messages back (the sweep checks before it moves any)."""
        ...

    @property
    def health_probes(self) -> Sequence[HealthProbe]:
        """The dependency checks of GET /api/health, by name."""
        ...

    async def close(self) -> None:
        """Release every client the bundle built."""
        ...
