"""Retry and delete jobs run end to end on the Azure stores, wired by `Services` as the app wires them.

What jobs do is asserted on the twins (tests/unit/jobs); what each Azure store does, by the contract
suite (tests/contract). These two runs prove the pieces fit on Azure: the `jobs` queue as the host
delivers it, table transactions over the frozen selection, and content removed from the blobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import AnyHttpUrl

from shared.config.models import HttpEndpoint, IntegrationConfig
from shared.failures.models import Failure, FailureOrigin
from shared.failures.records import new_failure
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.messages.models import Envelope
from shared.services import Services
from shared.settings import Settings
from shared.values import utc_now
from tests.support.auth import TESTER
from tests.support.stores import azure_stores, stored_failures


@pytest.fixture
async def services(storage_env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env({**storage_env, "JOB_PAGE_SIZE": "5", "JOB_RATE_LIMIT_PER_S": "1000"}))
    try:
        yield services
    finally:
        await services.close()


async def seed(services: Services, count: int, *, sender: str = "shop") -> list[Failure]:
    """The integration's config and `count` failures, each with its content in the payloads blob."""
    endpoint = HttpEndpoint(url=AnyHttpUrl("https://receiver.example/in"))
    await services.stores.integrations.put(IntegrationConfig(id="orders", name="orders", endpoint=endpoint))
    failures = []
    for number in range(count):
        envelope = Envelope(integration="orders", body_text=f'{{"n": {number}}}', sender=sender, resend_count=1)
        await services.stores.payloads.put(envelope.id, envelope.inline_body() or b"", content_type="application/json")
        failure = new_failure(
            envelope, origin=FailureOrigin.ENDPOINT, reason=f"HTTP 503 #{number}", now=utc_now(), body_ref=envelope.id
        )
        failures.append(await services.stores.failures.add(failure))
    return failures


async def run_until_done(services: Services, *, limit: int = 100) -> int:
    """Deliver `jobs` queue messages to the runner like the host would; returns pages run."""
    pages = 0
    azure = azure_stores(services)
    for _ in range(limit):
        messages = await azure.account.queues.receive(azure.names.jobs_queue, visibility_timeout_s=30)
        if not messages:
            return pages
        for message in messages:
            if await services.job_runner.run_page(message.body, message_id=message.id, now=utc_now()) is not None:
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


async def test_retry_all_resends_every_failure_once_and_completes(services):
    # Given 12 failures and a page size of 5
    failures = await seed(services, 12)

    # When a retry job runs to the end
    request = JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))
    job = await services.jobs.start("orders", request, actor=TESTER, now=utc_now())
    pages = await run_until_done(services)

    # Then each message is back on inbound once, with resend_count+1 and its body by reference
    sent = await inbound_envelopes(services)
    assert sorted(e.id for e in sent) == sorted(f.message_id for f in failures)
    assert {e.resend_count for e in sent} == {2} and all(e.body_ref for e in sent)
    # And the failures are gone, the job says so, and the integration is free for the next job
    done = await services.jobs.get("orders", job.id, now=utc_now())
    assert (done.state, done.total, done.processed, done.succeeded, done.failed) == (JobState.COMPLETED, 12, 12, 12, 0)
    assert pages == 3
    assert (await services.stores.failures.summary("orders")).count == 0
    await services.jobs.start("orders", request, actor=TESTER, now=utc_now())


async def test_delete_with_a_filter_removes_only_matches_and_their_content(services):
    # Given failures from two senders
    keep = await seed(services, 3, sender="erp")
    drop = await seed(services, 4, sender="shop")

    # When a delete job for one sender runs
    selection = JobSelection.model_validate({"filter": {"sender": "shop"}})
    job = await services.jobs.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=selection), actor=TESTER, now=utc_now()
    )
    await run_until_done(services)

    # Then only its failures and their blobs are gone, and nothing was resent
    remaining = await stored_failures(services.stores.failures, "orders")
    assert {f.id for f in remaining} == {f.id for f in keep}
    assert [await services.stores.payloads.get(f.body_ref or "") for f in drop] == [None] * 4
    assert None not in [await services.stores.payloads.get(f.body_ref or "") for f in keep]
    done = await services.jobs.get("orders", job.id, now=utc_now())
    assert (done.state, done.total, done.succeeded) == (JobState.COMPLETED, 4, 4)
    assert await inbound_envelopes(services) == []
