"""Control on the twins: the engine with its gate, the drain and the control service, on one fake clock."""

from __future__ import annotations

from dataclasses import dataclass

from shared.audit.models import Actor
from shared.audit.service import AuditTrail
from shared.control.drain import HeldDrainer
from shared.control.gate import DeliveryControl
from shared.control.limiter import RateLimiter
from shared.control.service import IntegrationControl
from shared.delivery.engine import DeliveryEngine, Outcome
from shared.delivery.retry import EndpointRetryPolicy
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.messages.wire import pack
from shared.operability.metrics import Metrics
from tests.twins.clock import FakeTime
from tests.twins.senders import OneSender, ScriptedSender
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import run_inbound

REFRESH_S = 2.0


def actor(name: str) -> Actor:
    """An operator signed in by name (dev mode)."""
    return Actor(name=name, id=name, auth="dev")


@dataclass
class Controlled:
    stores: MemoryStores
    time: FakeTime
    sender: ScriptedSender
    metrics: Metrics
    gate: DeliveryControl
    engine: DeliveryEngine
    drainer: HeldDrainer
    control: IntegrationControl

    async def arrive(self, *bodies: str, integration: str = "orders") -> list[Envelope]:
        """Messages arrive on `inbound`, one after another (a microsecond apart, in this order)."""
        envelopes = []
        for body in bodies:
            self.time.advance(0.001)
            envelope = Envelope(integration=integration, body_text=body, received_at=self.time.now())
            _, text = await pack(envelope, self.stores.payloads)
            await self.stores.inbound.send(text)
            envelopes.append(envelope)
        return envelopes

    async def run_inbound(self) -> list[Outcome]:
        return await run_inbound(self.engine, self.stores, self.time)

    async def run_drains(self, *, limit: int = 100) -> int:
        """Run the `drain` queue like the host until nothing waits (a delayed pass is waited for)."""
        pages = 0
        for _ in range(limit):
            waiting = self.stores.drain_requests.peek()
            if not waiting:
                return pages
            visible_at = min(message.visible_at for message in waiting)
            if visible_at > self.time.now():
                self.time.advance((visible_at - self.time.now()).total_seconds())
            for message in self.stores.drain_requests.drain():
                await self.drainer.run(message.body)
                pages += 1
        raise AssertionError("the drain queue never emptied")

    def delivered_bodies(self) -> list[str]:
        return [delivery.body.decode() for delivery in self.sender.sent]


def controlled(
    stores: MemoryStores, time: FakeTime, sender: ScriptedSender, *, endpoint_attempts: int = 1
) -> Controlled:
    metrics = Metrics()
    gate = DeliveryControl(
        states=stores.control_states,
        held=stores.held,
        payloads=stores.payloads,
        circuit_window=stores.circuit_window,
        limiter=RateLimiter(stores.rate_slots, clock=lambda: time.now().timestamp(), sleep=time.sleep),
        metrics=metrics,
        refresh_s=REFRESH_S,
        clock=time.now,
        monotonic=time.monotonic,
    )
    engine = DeliveryEngine(
        configs=stores.integrations,
        senders=OneSender(sender),
        inbound=InboundShards(stores.inbound_shards),
        payloads=stores.payloads,
        failures=stores.failures,
        error_window=stores.error_window,
        endpoint_policy=EndpointRetryPolicy(max_attempts=endpoint_attempts, base_delay_s=0.1, window_s=60),
        metrics=metrics,
        gate=gate,
        clock=time.now,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )
    drainer = HeldDrainer(
        control=gate,
        states=stores.control_states,
        held=stores.held,
        requests=stores.drain_requests,
        process=lambda envelope, release: engine.process(envelope, release=release),
        metrics=metrics,
        refresh_s=REFRESH_S,
        clock=time.now,
        monotonic=time.monotonic,
    )
    control = IntegrationControl(
        integrations=stores.integrations,
        states=stores.control_states,
        held=stores.held,
        control=gate,
        drainer=drainer,
        circuit_window=stores.circuit_window,
        audit=AuditTrail(stores.audit, retention_days=365, clock=time.now),
        refresh_s=REFRESH_S,
        clock=time.now,
        sleep=time.sleep,
    )
    return Controlled(stores, time, sender, metrics, gate, engine, drainer, control)
