"""The audit trail as the actions write it, against Azurite: who changed a config, started, cancelled and
finished a job, replayed recovery; what each entry says; and what happens when the trail cannot be written."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.audit.models import Actor, AuditAction, AuditEntry, AuditFilter, AuditPage
from shared.audit.service import AuditTrail
from shared.errors import StorageUnavailable
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.services import Services
from shared.values import utc_now
from tests.integration.test_jobs import make_service, run_until_done, seed
from tests.support.stores import azure_stores
from tests.twins.clock import FakeTime

ADA = Actor(name="Ada Lovelace", id="oid-ada", auth="aad")
OPERATOR = Actor(name="operator", id="operator", auth="dev")
CONFIG = {"name": "Orders", "endpoint": {"kind": "http", "url": "https://receiver.example/in"}}


@pytest.fixture
def time() -> FakeTime:
    # The real time: entries are listed from this machine's current month.
    return FakeTime(utc_now())


async def trail(services: Services, **filters: object) -> list[AuditEntry]:
    """The whole trail (or a filtered part), newest first."""
    return (await services.audit.page(AuditFilter.model_validate(filters), limit=500)).items


async def test_config_changes_are_recorded_as_the_admins_with_the_fields_that_changed(services):
    # When an admin creates a config, changes its retry count and a header, then deletes it
    await services.integrations.save("orders", CONFIG, actor=ADA)
    changed = {**CONFIG, "retry": {"linear_count": 7}}
    changed["endpoint"] = {**CONFIG["endpoint"], "headers": {"X-Api-Key": "s3cret"}}  # type: ignore[dict-item]
    await services.integrations.save("orders", changed, actor=ADA)
    await services.integrations.delete("orders", actor=ADA)

    # Then the trail says so, newest first, naming fields and never their values
    delete, change, create = await trail(services, integration="orders")
    assert [e.action for e in (create, change, delete)] == [
        AuditAction.CONFIG_PUT,
        AuditAction.CONFIG_PUT,
        AuditAction.CONFIG_DELETE,
    ]
    assert {e.actor for e in (create, change, delete)} == {ADA}
    assert create.details["created"] is True and "endpoint" in create.details["changed"]
    assert change.details == {"created": False, "changed": ["endpoint.headers.X-Api-Key", "retry.linear_count"]}
    assert "s3cret" not in json.dumps([e.model_dump(mode="json") for e in (create, change, delete)])


async def test_a_job_is_recorded_as_started_and_finished_by_its_starter(services, time):
    # Given failures, and an operator starting a retry job on all of them
    await seed(services, time, 3)
    service = make_service(services, time)
    job = await service.start(
        "orders", JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True)), actor=OPERATOR, now=time.now()
    )

    # When the job runs to its end
    time.advance(1)
    await run_until_done(services, service, time)

    # Then the job names its creator, and the trail its start and its end, both as the operator's
    assert (await service.get("orders", job.id, now=time.now())).created_by == OPERATOR
    finish, start = await trail(services, integration="orders", action=None)
    assert (start.action, finish.action) == (AuditAction.JOB_START, AuditAction.JOB_FINISH)
    assert start.actor == finish.actor == OPERATOR
    assert start.target == finish.target == job.id
    assert start.details == {"action": "retry", "selection": {"all": True}, "total": 3}
    assert finish.details["state"] == "completed"
    assert (finish.details["processed"], finish.details["succeeded"], finish.details["failed"]) == (3, 3, 0)


async def test_a_cancel_is_the_cancellers_and_the_end_is_still_the_starters(services, time):
    # Given a job an operator started
    await seed(services, time, 12)
    service = make_service(services, time, page_size=5)
    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=OPERATOR, now=time.now()
    )

    # When an admin cancels it and it stops
    time.advance(1)
    await service.cancel("orders", job.id, actor=ADA, now=time.now())
    time.advance(1)
    await run_until_done(services, service, time)

    # Then
    finish, cancel, start = await trail(services, integration="orders")
    assert [(e.action, e.actor) for e in (start, cancel, finish)] == [
        (AuditAction.JOB_START, OPERATOR),
        (AuditAction.JOB_CANCEL, ADA),
        (AuditAction.JOB_FINISH, OPERATOR),
    ]
    assert finish.details["state"] == "cancelled"


async def test_a_replay_is_recorded_with_what_it_moved(services):
    # Given a message the host gave up on
    azure = azure_stores(services)
    envelope = {"id": "poisoned-1", "integration": "orders", "body_text": "{}"}
    await azure.account.queues.send(f"{azure.names.inbound}-poison", json.dumps(envelope))

    # When an operator replays recovery
    result = await services.sweeper.replay(actor=OPERATOR)

    # Then the trail has the replay, app-wide (no integration), with the counts
    [replay] = await trail(services)
    assert (replay.action, replay.actor, replay.integration) == (AuditAction.RECOVERY_REPLAY, OPERATOR, None)
    assert result.reinserted == 1
    assert replay.details["reinserted"] == 1 and replay.details["by_queue"] == result.by_queue
    assert await trail(services, integration="orders") == []


class DownAuditStore:
    """An audit store that cannot be reached."""

    async def append(self, entry: AuditEntry) -> None:
        raise StorageUnavailable("audit table unreachable (injected)")

    async def page(self, selection: AuditFilter, *, limit: int, cursor: object) -> AuditPage:
        raise StorageUnavailable("audit table unreachable (injected)")

    async def purge_before(self, cutoff: object, *, limit: int) -> int:
        raise StorageUnavailable("audit table unreachable (injected)")


async def test_a_job_whose_start_cannot_be_recorded_never_runs_and_frees_the_integration(services, time):
    # Given failures, and an audit trail that cannot be written
    await seed(services, time, 2)
    service = make_service(services, time)
    service._audit = AuditTrail(DownAuditStore(), retention_days=365)
    request = JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))

    # When a job is started
    with pytest.raises(StorageUnavailable):
        await service.start("orders", request, actor=OPERATOR, now=time.now())

    # Then no page was queued, the job ended as failed saying why, and the next start is not refused as a conflict
    azure = azure_stores(services)
    assert await azure.account.queues.receive(azure.names.jobs_queue) == []
    [job] = await service.list("orders", now=time.now())
    assert job.state is JobState.FAILED and "audit" in (job.last_error or "")
    service._audit = services.audit
    await service.start("orders", request, actor=OPERATOR, now=time.now())


async def test_a_config_whose_change_cannot_be_recorded_answers_the_error(services):
    # Given an audit trail that cannot be written
    services.integrations._audit = AuditTrail(DownAuditStore(), retention_days=365)

    # When / Then: the caller is told (the change itself stands; the log keeps audit.unrecorded)
    with pytest.raises(StorageUnavailable):
        await services.integrations.save("orders", CONFIG, actor=ADA)


async def test_the_retention_timer_purges_entries_past_audit_retention_days(services, time):
    # Given an entry of 400 days ago and one of 300, with the default retention of 365 days
    await services.audit.record(ADA, AuditAction.CONFIG_DELETE, integration="old", at=time.now() - timedelta(days=400))
    kept = await services.audit.record(
        ADA, AuditAction.CONFIG_DELETE, integration="new", at=time.now() - timedelta(days=300)
    )

    # When
    removed = await services.audit.purge(now=time.now())

    # Then
    assert services.settings.audit_retention_days == 365
    assert removed == 1
    assert await trail(services) == [kept]


async def test_a_stored_config_this_version_cannot_read_can_still_be_replaced_and_the_trail_says_so(services):
    # Given a config row an older version stored and this one cannot read (min delay over the default max)
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.integrations)
    unreadable = {**CONFIG, "id": "orders", "retry": {"backoff": {"requeue_min_delay_seconds": 90}}}
    await table.upsert({"PartitionKey": "config", "RowKey": "orders", "Config": json.dumps(unreadable)})

    # When an admin replaces it
    config, created = await services.integrations.save("orders", CONFIG, actor=ADA)

    # Then it is replaced, and the entry says the previous config could not be read
    assert created is False and config.name == "Orders"
    [put] = await trail(services, integration="orders")
    assert put.details == {"created": False, "previous_unreadable": True}
