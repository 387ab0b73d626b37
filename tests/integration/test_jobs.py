"""Retry and delete jobs against Azurite: the lock, paging, checkpoints, cancel, rate, crashes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from pydantic import AnyHttpUrl

from shared.config.models import HttpEndpoint, IntegrationConfig
from shared.errors import Conflict, IntegrationNotFound, JobAlreadyActive, StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.failures.ports import FailureStore
from shared.failures.records import new_failure
from shared.jobs.models import JobAction, JobLimits, JobRequest, JobSelection, JobState
from shared.jobs.ports import Checkpoint
from shared.jobs.runner import JobService
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.services import Services
from tests.support.auth import TESTER
from tests.support.stores import azure_stores, stored_failures
from tests.twins.clock import FakeTime


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def make_service(
    services: Services,
    time: FakeTime,
    *,
    page_size=5,
    rate=1000.0,
    depth=1000,
    inbound: MessageQueue | None = None,
    failures: FailureStore | None = None,
) -> JobService:
    stores = services.stores
    return JobService(
        jobs=stores.jobs,
        integrations=stores.integrations,
        failures=failures or stores.failures,
        payloads=stores.payloads,
        inbound=inbound or stores.inbound,
        job_pages=stores.job_pages,
        limits=JobLimits(page_size=page_size, rate_per_s=rate, max_inbound_depth=depth),
        metrics=services.metrics,
        audit=services.audit,
        sleep=time.sleep,
        monotonic=time.monotonic,
    )


async def seed(
    services: Services,
    time: FakeTime,
    count: int,
    *,
    integration="orders",
    sender="shop",
    origin=FailureOrigin.ENDPOINT,
):
    """The integration's config and `count` failures, one second apart, each with its content in the payloads blob."""
    endpoint = HttpEndpoint(url=AnyHttpUrl("https://receiver.example/in"))
    await services.stores.integrations.put(IntegrationConfig(id=integration, name=integration, endpoint=endpoint))
    failures = []
    for number in range(count):
        envelope = Envelope(integration=integration, body_text=f'{{"n": {number}}}', sender=sender, resend_count=1)
        await services.stores.payloads.put(envelope.id, envelope.inline_body() or b"", content_type="application/json")
        failure = new_failure(
            envelope, origin=origin, reason=f"HTTP 503 #{number}", now=time.now(), body_ref=envelope.id, status_code=503
        )
        await services.stores.failures.add(failure)
        failures.append(failure)
        time.advance(1)
    return failures


async def run_until_done(services: Services, service: JobService, time: FakeTime, *, limit=100) -> int:
    """Deliver `jobs` queue messages to the runner like the host would; returns pages run."""
    pages = 0
    azure = azure_stores(services)
    for _ in range(limit):
        messages = await azure.account.queues.receive(azure.names.jobs_queue, visibility_timeout_s=30)
        if not messages:
            return pages
        for message in messages:
            if await service.run_page(message.body, message_id=message.id, now=time.now()) is not None:
                pages += 1
            await azure.account.queues.delete(azure.names.jobs_queue, message)
    raise AssertionError("jobs queue never drained")


async def inbound_envelopes(services: Services) -> list[Envelope]:
    """Everything on `inbound` now (each received once: it stays invisible for a minute)."""
    found: list[Envelope] = []
    azure = azure_stores(services)
    for _ in range(50):
        batch = await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=60)
        if not batch:
            return found
        found += [Envelope.model_validate_json(m.body) for m in batch]
    raise AssertionError(f"inbound never drained: {len(found)} messages received in 50 batches")


def retry_all() -> JobRequest:
    return JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))


async def test_retry_all_resends_every_failure_once_and_completes(services, time):
    # Given 12 failures and a page size of 5
    failures = await seed(services, time, 12)
    service = make_service(services, time)

    # When a retry job runs to the end
    job = await service.start("orders", retry_all(), actor=TESTER, now=time.now())
    pages = await run_until_done(services, service, time)

    # Then each message is back on inbound once, with resend_count+1 and counters reset
    sent = await inbound_envelopes(services)
    assert sorted(e.id for e in sent) == sorted(f.message_id for f in failures)
    assert {e.resend_count for e in sent} == {2}
    assert {(e.engine_attempts, e.delay_actions, e.attempts) for e in sent} == {(0, 0, 0)}
    assert all(e.body_ref for e in sent)
    # And the failures are gone, the job says so, and the integration is free again
    done = await service.get("orders", job.id, now=time.now())
    assert (done.state, done.total, done.processed, done.succeeded, done.failed) == (JobState.COMPLETED, 12, 12, 12, 0)
    assert pages == 3
    assert (await services.stores.failures.summary("orders")).count == 0
    await service.start("orders", retry_all(), actor=TESTER, now=time.now())


async def test_a_job_on_an_integration_with_neither_config_nor_failures_is_not_found_and_takes_no_lock(services, time):
    # Given an integration nobody configured and nothing failed under
    service = make_service(services, time)

    # When a job is started for it
    with pytest.raises(IntegrationNotFound) as caught:
        await service.start("nobody", retry_all(), actor=TESTER, now=time.now())

    # Then it is a 404, and no job row, lock or page message was written
    assert caught.value.http_status == 404
    assert await service.list("nobody", now=time.now()) == []
    azure = azure_stores(services)
    assert await azure.account.queues.receive(azure.names.jobs_queue) == []


async def test_a_job_on_failures_whose_config_is_gone_is_accepted(services, time):
    # Given failures of an integration whose config was deleted since (as `_unknown`'s never had one)
    await seed(services, time, 2)
    await services.stores.integrations.delete("orders")

    # When a delete job is started for them
    job = await make_service(services, time).start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )

    # Then it is accepted: the failures can still be cleaned up
    assert (job.state, job.total) == (JobState.QUEUED, 2)


async def test_second_job_while_one_is_active_is_refused_with_its_id(services, time):
    await seed(services, time, 2)
    service = make_service(services, time)
    first = await service.start("orders", retry_all(), actor=TESTER, now=time.now())

    with pytest.raises(JobAlreadyActive) as caught:
        await service.start(
            "orders",
            JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)),
            actor=TESTER,
            now=time.now(),
        )

    assert caught.value.active_job_id == first.id
    assert caught.value.http_status == 409


async def test_twenty_concurrent_starts_admit_exactly_one(services, time):
    await seed(services, time, 1)
    service = make_service(services, time)

    results = await asyncio.gather(
        *(service.start("orders", retry_all(), actor=TESTER, now=time.now()) for _ in range(20)), return_exceptions=True
    )

    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, JobAlreadyActive)]
    assert len(started) == 1 and len(refused) == 19
    assert {r.active_job_id for r in refused} == {started[0].id}
    assert len(await services.stores.jobs.list("orders")) == 1


async def test_delete_with_a_filter_removes_only_matches_and_their_content(services, time):
    keep = await seed(services, time, 3, sender="erp")
    drop = await seed(services, time, 4, sender="shop")
    service = make_service(services, time)

    selection = JobSelection.model_validate({"filter": {"sender": "shop"}})
    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=selection), actor=TESTER, now=time.now()
    )
    await run_until_done(services, service, time)

    remaining = await stored_failures(services.stores.failures, "orders")
    assert {f.id for f in remaining} == {f.id for f in keep}
    assert [await services.stores.payloads.get(f.body_ref or "") for f in drop] == [None] * 4
    assert None not in [await services.stores.payloads.get(f.body_ref or "") for f in keep]
    done = await service.get("orders", job.id, now=time.now())
    assert (done.state, done.total, done.succeeded) == (JobState.COMPLETED, 4, 4)
    assert await inbound_envelopes(services) == []


async def test_ids_selection_handles_exactly_those_and_skips_unknown_ids(services, time):
    failures = await seed(services, time, 5)
    service = make_service(services, time, page_size=2)
    chosen = [failures[0].id, failures[3].id, "0000000000000000-0000000000ff"]

    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(ids=chosen)), actor=TESTER, now=time.now()
    )
    await run_until_done(services, service, time)

    done = await service.get("orders", job.id, now=time.now())
    assert (done.total, done.processed, done.succeeded, done.skipped) == (3, 3, 2, 1)
    remaining = {f.id for f in await stored_failures(services.stores.failures, "orders")}
    assert remaining == {failures[i].id for i in (1, 2, 4)}


async def test_failures_newer_than_the_job_are_left_alone(services, time):
    await seed(services, time, 3)
    service = make_service(services, time)
    job = await service.start("orders", retry_all(), actor=TESTER, now=time.now())

    # A failure arrives after the job was created, before it runs
    time.advance(5)
    [late] = await seed(services, time, 1)
    await run_until_done(services, service, time)

    remaining = [f.id for f in await stored_failures(services.stores.failures, "orders")]
    assert remaining == [late.id]
    assert (await service.get("orders", job.id, now=time.now())).succeeded == 3


async def test_cancel_stops_at_the_next_page_boundary(services, time):
    await seed(services, time, 10)
    service = make_service(services, time, page_size=3)
    job = await service.start("orders", retry_all(), actor=TESTER, now=time.now())

    # When the first page runs, then cancel is requested
    azure = azure_stores(services)
    [message] = await azure.account.queues.receive(azure.names.jobs_queue)
    await service.run_page(message.body, message_id=message.id, now=time.now())
    await azure.account.queues.delete(azure.names.jobs_queue, message)
    await service.cancel("orders", job.id, actor=TESTER, now=time.now())
    await run_until_done(services, service, time)

    # Then one page was handled and the rest stays for later
    done = await service.get("orders", job.id, now=time.now())
    assert (done.state, done.processed) == (JobState.CANCELLED, 3)
    assert (await services.stores.failures.summary("orders")).count == 7
    with pytest.raises(Conflict):
        await service.cancel("orders", job.id, actor=TESTER, now=time.now())


async def test_rate_limit_paces_items(services, time):
    await seed(services, time, 6)
    service = make_service(services, time, page_size=10, rate=2.0)

    await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    slept_before = sum(time.sleeps)
    await run_until_done(services, service, time)

    # 6 items at 2/s: item n starts no earlier than n/2 s in → at least 2.5 s of pacing
    assert sum(time.sleeps) - slept_before >= 2.5


async def test_backpressure_defers_a_retry_page_while_inbound_is_deep(services, time):
    await seed(services, time, 2)
    azure = azure_stores(services)
    for _ in range(3):
        await azure.account.queues.send(azure.names.inbound, "{}")
    service = make_service(services, time, depth=2)

    await service.start("orders", retry_all(), actor=TESTER, now=time.now())
    [message] = await azure.account.queues.receive(azure.names.jobs_queue)
    outcome = await service.run_page(message.body, message_id=message.id, now=time.now())
    await azure.account.queues.delete(azure.names.jobs_queue, message)

    assert outcome is None
    assert (await services.stores.failures.summary("orders")).count == 2
    assert await azure.account.queues.depth(azure.names.jobs_queue) == 1  # deferred, invisible for now


class FlakyInbound:
    """The real `inbound` queue, but its sends fail after `fail_after` successes."""

    def __init__(self, inner: MessageQueue, fail_after: int) -> None:
        self._inner, self.fail_after = inner, fail_after
        self.name = inner.name
        self.sent_ids: list[str] = []

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        if len(self.sent_ids) >= self.fail_after:
            raise StorageUnavailable("inbound unreachable (injected)")
        self.sent_ids.append(json.loads(text)["id"])
        await self._inner.send(text, delay_s=delay_s)

    async def depth(self) -> int:
        return await self._inner.depth()


async def test_page_that_crashes_midway_and_reruns_never_resends_what_it_removed(services, time):
    # Given a retry job whose page crashes after 3 of 5 sends
    failures = await seed(services, time, 5)
    azure = azure_stores(services)
    flaky = FlakyInbound(services.stores.inbound, fail_after=3)
    service = make_service(services, time, page_size=5, inbound=flaky)
    await service.start("orders", retry_all(), actor=TESTER, now=time.now())
    [message] = await azure.account.queues.receive(azure.names.jobs_queue, visibility_timeout_s=1)
    with pytest.raises(StorageUnavailable):
        await service.run_page(message.body, message_id=message.id, now=time.now())

    # When storage is back and the host re-delivers the same message
    flaky.fail_after = 100
    await service.run_page(message.body, message_id=message.id, now=time.now())

    # Then every message was sent exactly once and every failure is gone
    assert sorted(flaky.sent_ids) == sorted(f.message_id for f in failures)
    assert (await services.stores.failures.summary("orders")).count == 0


async def test_duplicate_page_message_does_not_run_a_claimed_page(services, time):
    await seed(services, time, 2)
    service = make_service(services, time)
    job = await service.start("orders", retry_all(), actor=TESTER, now=time.now())
    store = services.stores.jobs
    record = await store.get("orders", job.id)
    assert record is not None
    await store.save(record, record.job, Checkpoint(claim="other-message", claimed_at=time.now()), now=time.now())

    outcome = await service.run_page(
        json.dumps({"integration": "orders", "job_id": job.id}).encode(), message_id="dup", now=time.now()
    )

    assert outcome is None
    assert (await services.stores.failures.summary("orders")).count == 2


async def test_watchdog_resumes_a_job_whose_page_message_was_lost(services, time):
    await seed(services, time, 2)
    service = make_service(services, time)
    job = await service.start("orders", retry_all(), actor=TESTER, now=time.now())
    azure = azure_stores(services)
    await azure.account.queues.clear(azure.names.jobs_queue)  # the page message is lost

    time.advance(service.claim_timeout.total_seconds() + 1)
    resumed = await service.resume_stalled(now=time.now())
    await run_until_done(services, service, time)

    assert resumed == 1
    assert (await service.get("orders", job.id, now=time.now())).state is JobState.COMPLETED


async def test_unknown_job_is_not_found(services, time):
    from shared.errors import JobNotFound

    with pytest.raises(JobNotFound):
        await make_service(services, time).get("orders", "nope", now=time.now() + timedelta(0))


async def test_cancel_while_a_page_runs_keeps_that_pages_counts(services, time):
    # Given a delete job whose page is paced by the rate limit
    await seed(services, time, 6)
    service = make_service(services, time, page_size=6, rate=2.0)
    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    cancelled = False

    async def sleep_then_cancel(seconds: float) -> None:
        # The user presses Cancel while the page is waiting for its rate slot
        nonlocal cancelled
        await time.sleep(seconds)
        if not cancelled:
            cancelled = True
            await service.cancel("orders", job.id, actor=TESTER, now=time.now())

    service._sleep = sleep_then_cancel
    azure = azure_stores(services)
    [message] = await azure.account.queues.receive(azure.names.jobs_queue)

    # When that page finishes
    ended = await service.run_page(message.body, message_id=message.id, now=time.now())

    # Then the job is cancelled at the page boundary and the page's work is counted
    assert cancelled
    assert ended is not None
    assert (ended.state, ended.processed, ended.succeeded) == (JobState.CANCELLED, 6, 6)
    stored = await service.get("orders", job.id, now=time.now())
    assert (stored.state, stored.processed) == (JobState.CANCELLED, 6)
    assert (await services.stores.failures.summary("orders")).count == 0
