"""`MemoryStores`: every store twin as one bundle, the in-memory `shared.stores.Stores`.

`Services(settings, stores=MemoryStores(time.now))` runs the whole core without Azure. Each member
is typed as its twin, so a test reaches the affordances (`stores.inbound.drain()`,
`stores.failures.edit(...)`, `stores.job_pages.arm("send", ...)`) without casts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from shared.operability.health import HealthProbe
from shared.stores import Stores
from tests.twins.alerts import MemoryAlertLog, MemoryAlertRules
from tests.twins.audit import MemoryAuditStore
from tests.twins.control import MemoryControlStates, MemoryHeldMessages, MemoryRateSlots
from tests.twins.error_window import MemoryErrorWindow
from tests.twins.failures import MemoryFailureStore
from tests.twins.integrations import MemoryIntegrationStore
from tests.twins.jobs import MemoryJobStore
from tests.twins.payloads import MemoryPayloadStore
from tests.twins.pickups import MemoryPickupStates, MemorySeenItems
from tests.twins.queues import MemoryQueue
from tests.twins.recovery import FlowProbeStub, MemoryRecoveryFlow, MemorySource, MemorySweepState
from tests.twins.timeline import MemorySettleCounts, MemoryTimelineStore


class MemoryStores:
    """Implements `shared.stores.Stores` with the twins, all on one clock (e.g. `FakeTime().now`)."""

    def __init__(self, clock: Callable[[], datetime], *, inbound_shards: int = 1) -> None:
        self.clock = clock
        self.integrations = MemoryIntegrationStore()
        self.payloads = MemoryPayloadStore(clock)
        self.failures = MemoryFailureStore(self.payloads)
        self.jobs = MemoryJobStore()
        self.settle_counts = MemorySettleCounts()
        self.timeline = MemoryTimelineStore()
        self.error_window = MemoryErrorWindow()
        self.audit = MemoryAuditStore()
        self.inbound = MemoryQueue("inbound", clock)
        #: `inbound` and `inbound-1` … (INBOUND_SHARDS); `inbound` is shard 0.
        self.inbound_shards: Sequence[MemoryQueue] = (
            self.inbound,
            *(MemoryQueue(f"inbound-{shard}", clock) for shard in range(1, inbound_shards)),
        )
        self.job_pages = MemoryQueue("jobs", clock)
        self.recovery = MemoryRecoveryFlow(clock)
        #: The host's poison queues of every inbound shard and `jobs`.
        self.inbound_poison = MemorySource("inbound-poison", "poison", "inbound", clock)
        self.shard_poison = [
            MemorySource(f"{queue.name}-poison", "poison", "inbound", clock) for queue in self.inbound_shards[1:]
        ]
        self.jobs_poison = MemorySource("jobs-poison", "poison", "jobs", clock)
        self.poison: Sequence[MemorySource] = (self.inbound_poison, *self.shard_poison, self.jobs_poison)
        #: Shards beyond INBOUND_SHARDS that still hold messages (a test adds them: the setting was lowered).
        self.retired: list[MemorySource] = []
        self.sweep_state = MemorySweepState()
        self.pickups = MemoryPickupStates()
        self.pickup_seen = MemorySeenItems()
        self.main_flow = FlowProbeStub()
        self.control_states = MemoryControlStates()
        self.held = MemoryHeldMessages()
        self.rate_slots = MemoryRateSlots()
        self.circuit_window = MemoryErrorWindow()
        self.drain_requests = MemoryQueue("drain", clock)
        self.alert_rules = MemoryAlertRules()
        self.alert_log = MemoryAlertLog()
        self.alert_events = MemoryQueue("alert-events", clock)
        self.closed = False

    @property
    def health_probes(self) -> Sequence[HealthProbe]:
        return [
            ("storage.queues", self.inbound.depth),
            ("storage.tables", self.failures.ping),
            ("storage.blobs", self.payloads.ping),
            ("recovery.queues", self.recovery.status),
        ]

    async def retired_shards(self) -> Sequence[MemorySource]:
        return list(self.retired)

    async def close(self) -> None:
        await self.recovery.close()
        self.closed = True


def as_stores(stores: MemoryStores) -> Stores:
    """The bundle as the domain sees it; mypy checks here that every twin implements its Protocol."""
    return stores
