"""Building the core on the twins, and running it the way the host would, without Azure or sleeps.

`services_on(stores, **settings)` is the app's own composition root on `MemoryStores`. The engine
and the job runner take a clock, a sleep and a monotonic time, which `Services` leaves at their
real defaults, so the tests that need a fake clock build those two here from the same stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

from pydantic import AnyHttpUrl

from shared.audit.service import AuditTrail
from shared.config.models import HttpEndpoint, IntegrationConfig
from shared.delivery.engine import DeliveryEngine, Outcome, OutcomeObserver
from shared.delivery.retry import EndpointRetryPolicy
from shared.failures.models import Failure, FailureOrigin
from shared.failures.records import new_failure
from shared.jobs.batches import JobBatches
from shared.jobs.lifecycle import JobLifecycle
from shared.jobs.models import JobLimits
from shared.jobs.pages import JobPages
from shared.jobs.runner import JobRunner
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from shared.recovery.ports import Parking
from shared.services import Services
from shared.settings import Settings
from shared.timeline.recorder import TimelineRecorder
from tests.twins.clock import FakeTime
from tests.twins.senders import OneSender, ScriptedSender
from tests.twins.stores import MemoryStores


def services_on(stores: MemoryStores, **settings: str) -> Services:
    """The app's `Services` on the twins, with these app settings (e.g. RECOVERY_MAX_REINSERTS="2")."""
    return Services(Settings.from_env(settings), stores=stores)


def make_config(integration: str = "orders", **overrides: Any) -> IntegrationConfig:
    data: dict[str, Any] = {
        "id": integration,
        "name": integration.title(),
        "endpoint": {"kind": "http", "url": "https://receiver.example/in"},
    }
    data.update(overrides)
    return IntegrationConfig.model_validate(data)


def make_engine(
    stores: MemoryStores,
    time: FakeTime,
    sender: ScriptedSender,
    *,
    endpoint_attempts: int = 2,
    parker: Parking | None = None,
    metrics: Metrics | None = None,
    observers: Sequence[OutcomeObserver] = (),
) -> DeliveryEngine:
    return DeliveryEngine(
        configs=stores.integrations,
        senders=OneSender(sender),
        inbound=InboundShards(stores.inbound_shards),
        payloads=stores.payloads,
        failures=stores.failures,
        error_window=stores.error_window,
        endpoint_policy=EndpointRetryPolicy(max_attempts=endpoint_attempts, base_delay_s=0.1, window_s=60),
        metrics=metrics or Metrics(),
        parker=parker,
        observers=observers,
        clock=time.now,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )


async def run_inbound(
    engine: DeliveryEngine, stores: MemoryStores, time: FakeTime, *, limit: int = 50
) -> list[Outcome]:
    """Deliver `inbound` to the engine like the host until nothing waits; a delayed copy is waited for
    by moving the clock to it."""
    outcomes: list[Outcome] = []
    for _ in range(limit):
        waiting = stores.inbound.peek()
        if not waiting:
            return outcomes
        visible_at = min(message.visible_at for message in waiting)
        if visible_at > time.now():
            time.advance((visible_at - time.now()).total_seconds())
        for message in stores.inbound.drain():
            outcomes.append(await engine.process_message(message.body, queue_message_id=message.id))
    raise AssertionError(f"inbound never drained: {len(outcomes)} messages processed")


class Jobs(NamedTuple):
    """Both halves of jobs over the same stores: the API's (start, get, list, cancel) and the queue trigger's."""

    lifecycle: JobLifecycle
    runner: JobRunner


def audit_on(stores: MemoryStores, time: FakeTime | None = None) -> AuditTrail:
    """The audit trail on the stores' twin, stamped by the fake clock when there is one."""
    clock = time.now if time is not None else stores.clock
    return AuditTrail(stores.audit, retention_days=365, clock=clock)


def make_jobs(
    stores: MemoryStores,
    time: FakeTime,
    *,
    page_size: int = 5,
    rate: float = 1000.0,
    depth: int = 1000,
    parker: Parking | None = None,
    metrics: Metrics | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    timeline: TimelineRecorder | None = None,
) -> Jobs:
    """Wired as `Services` wires them, with the fake clock's sleep and monotonic time for the pacing."""
    pages = JobPages(stores.job_pages, limits=JobLimits(page_size=page_size, rate_per_s=rate, max_inbound_depth=depth))
    audit = audit_on(stores, time)
    lifecycle = JobLifecycle(
        jobs=stores.jobs, integrations=stores.integrations, failures=stores.failures, pages=pages, audit=audit,
        settle_counts=stores.settle_counts,
    )  # fmt: skip
    inbound = InboundShards(stores.inbound_shards)
    batches = JobBatches(
        failures=stores.failures, payloads=stores.payloads, inbound=inbound, parker=parker, timeline=timeline
    )
    runner = JobRunner(
        jobs=stores.jobs,
        failures=stores.failures,
        pages=pages,
        batches=batches,
        inbound=inbound,
        metrics=metrics or Metrics(),
        audit=audit,
        sleep=sleep or time.sleep,
        monotonic=time.monotonic,
    )
    return Jobs(lifecycle, runner)


async def run_job_pages(runner: JobRunner, stores: MemoryStores, time: FakeTime, *, limit: int = 100) -> int:
    """Deliver the visible `jobs` queue messages to the runner like the host would; returns pages run."""
    pages = 0
    for _ in range(limit):
        batch = stores.job_pages.drain()
        if not batch:
            return pages
        for message in batch:
            if await runner.run_page(message.body, message_id=message.id, now=time.now()) is not None:
                pages += 1
    raise AssertionError("the jobs queue never drained")


async def seed_failures(
    stores: MemoryStores,
    time: FakeTime,
    count: int,
    *,
    integration: str = "orders",
    sender: str = "shop",
    origin: FailureOrigin = FailureOrigin.ENDPOINT,
    configured: bool = True,
) -> list[Failure]:
    """`count` failures one second apart, each with its content in the payload store (and the config)."""
    if configured:
        endpoint = HttpEndpoint(url=AnyHttpUrl("https://receiver.example/in"))
        await stores.integrations.put(IntegrationConfig(id=integration, name=integration, endpoint=endpoint))
    failures = []
    for number in range(count):
        envelope = Envelope(integration=integration, body_text=f'{{"n": {number}}}', sender=sender, resend_count=1)
        await stores.payloads.put(envelope.id, envelope.inline_body() or b"", content_type="application/json")
        failure = new_failure(
            envelope, origin=origin, reason=f"HTTP 503 #{number}", now=time.now(), body_ref=envelope.id, status_code=503
        )
        failures.append(await stores.failures.add(failure))
        time.advance(1)
    return failures


def envelopes_on(stores: MemoryStores) -> list[Envelope]:
    """Every message on `inbound`, delayed ones included, taken off the queue."""
    return [Envelope.model_validate_json(message.text) for message in stores.inbound.drain(include_delayed=True)]
