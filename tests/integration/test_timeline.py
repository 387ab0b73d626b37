"""The message timeline and retry jobs' settle counters on the Azure stores, wired by `Services` as the app wires
them: the engine against a real receiver, a retry job through the `jobs` queue, the retention purge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from shared.config.models import IntegrationConfig
from shared.delivery.engine import Delivered, FailureRecorded
from shared.jobs.models import JobAction, JobRequest, JobSelection
from shared.messages.models import Envelope
from shared.services import Services
from shared.settings import Settings
from shared.values import utc_now
from tests.support.auth import TESTER
from tests.support.receiver import Answer, Receiver
from tests.support.stores import azure_stores


@pytest.fixture
async def services(storage_env: dict[str, str]) -> AsyncIterator[Services]:
    settings = {**storage_env, "JOB_PAGE_SIZE": "5", "JOB_RATE_LIMIT_PER_S": "1000", "ENDPOINT_RETRY_MAX_ATTEMPTS": "1"}
    services = Services(Settings.from_env(settings))
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text="rejected")])
    await receiver.start()
    yield receiver
    await receiver.stop()


async def run_job(services: Services) -> None:
    azure = azure_stores(services)
    for _ in range(20):
        messages = await azure.account.queues.receive(azure.names.jobs_queue, visibility_timeout_s=30)
        if not messages:
            return
        for message in messages:
            await services.job_runner.run_page(message.body, message_id=message.id, now=utc_now())
            await azure.account.queues.delete(azure.names.jobs_queue, message)
    raise AssertionError("jobs queue never drained")


async def resent_envelopes(services: Services) -> list[Envelope]:
    azure = azure_stores(services)
    messages = await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=60)
    for message in messages:
        await azure.account.queues.delete(azure.names.inbound, message)
    return [Envelope.model_validate_json(message.body) for message in messages]


async def test_a_failed_message_retried_by_a_job_and_delivered_has_its_whole_story_on_azure(services, receiver):
    # Given a message the receiver refused
    config = {"id": "orders", "name": "orders", "endpoint": {"kind": "http", "url": receiver.url}}
    await services.stores.integrations.put(IntegrationConfig.model_validate(config))
    envelope = Envelope(integration="orders", body_text='{"n": 1}', sender="shop")
    assert isinstance(await services.engine.process(envelope), FailureRecorded)

    # When a retry job resends it and the receiver takes it
    receiver.script = [Answer(200)]
    job = await services.jobs.start(
        "orders", JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True)), actor=TESTER, now=utc_now()
    )
    await run_job(services)
    [resent] = await resent_envelopes(services)
    assert resent.job_id == job.id
    assert isinstance(await services.engine.process(resent), Delivered)

    # Then the timeline tells it, and the job counts the delivery
    timeline = await services.timelines.page("orders", envelope.id, limit=50, cursor=None)
    assert [item.event.value for item in timeline.items] == [
        "received", "attempt", "failed", "resent", "attempt", "delivered"
    ]  # fmt: skip
    assert timeline.items[3].details["job_id"] == job.id
    settled = await services.jobs.get("orders", job.id, now=utc_now())
    assert (settled.resent, settled.delivered, settled.failed_again, settled.pending) == (1, 1, 0, 0)


async def test_the_retention_purge_removes_timelines_with_the_failures(services, receiver):
    # Given a message with a timeline
    config = {"id": "orders", "name": "orders", "endpoint": {"kind": "http", "url": receiver.url}}
    await services.stores.integrations.put(IntegrationConfig.model_validate(config))
    envelope = Envelope(integration="orders", body_text="{}")
    await services.engine.process(envelope)
    assert (await services.timelines.page("orders", envelope.id, limit=50, cursor=None)).items

    # When the retention runs past FAILURE_RETENTION_DAYS
    result = await services.retention.purge(now=utc_now() + timedelta(days=8))

    # Then its events are gone with its failure
    assert result.timeline_events == 3 and result.failures == 1
    page = await services.stores.timeline.page("orders", envelope.id, limit=50, cursor=None)
    assert page.items == []
