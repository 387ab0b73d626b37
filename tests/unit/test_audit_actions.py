"""The audit trail as the actions write it, on the twins: who changed a config, started, cancelled and
finished a job, replayed recovery, asked a pickup source to run; what each entry says; and what
happens when the trail cannot be written."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from shared.audit.models import Actor, AuditAction, AuditEntry, AuditFilter
from shared.config.models import IntegrationConfig
from shared.errors import StorageUnavailable
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.services import Services
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_jobs, run_job_pages, seed_failures, services_on

ADA = Actor(name="Ada Lovelace", id="oid-ada", auth="aad")
OPERATOR = Actor(name="operator", id="operator", auth="dev")
CONFIG = {"name": "Orders", "endpoint": {"kind": "http", "url": "https://receiver.example/in"}}
DOWN = StorageUnavailable("audit table unreachable (injected)")


@pytest.fixture
def services(stores: MemoryStores) -> Services:
    return services_on(stores)


async def trail(stores: MemoryStores, **filters: object) -> list[AuditEntry]:
    """The whole trail (or a filtered part), newest first."""
    selection = AuditFilter.model_validate(filters)
    return [entry for entry in stores.audit.entries() if selection.matches(entry)]


def request(action: JobAction = JobAction.RETRY) -> JobRequest:
    return JobRequest(action=action, selection=JobSelection(all=True))


async def test_config_changes_are_recorded_as_the_admins_with_the_fields_that_changed(services, stores, fake_time):
    # When an admin creates a config, changes its retry count and a header, then deletes it
    await services.integrations.save("orders", CONFIG, actor=ADA)
    changed = {**CONFIG, "retry": {"linear_count": 7}}
    changed["endpoint"] = {**CONFIG["endpoint"], "headers": {"X-Api-Key": "s3cret"}}  # type: ignore[dict-item]
    await services.integrations.save("orders", changed, actor=ADA)
    await services.integrations.delete("orders", actor=ADA)

    # Then the trail says so, naming fields and never their values
    create, change, delete = reversed(await trail(stores, integration="orders"))
    assert [e.action for e in (create, change, delete)] == [
        AuditAction.CONFIG_PUT,
        AuditAction.CONFIG_PUT,
        AuditAction.CONFIG_DELETE,
    ]
    assert {e.actor for e in (create, change, delete)} == {ADA}
    assert create.details["created"] is True and "endpoint" in create.details["changed"]
    assert change.details == {"created": False, "changed": ["endpoint.headers.X-Api-Key", "retry.linear_count"]}
    assert "s3cret" not in json.dumps([e.model_dump(mode="json") for e in (create, change, delete)])


async def test_a_job_is_recorded_as_started_and_finished_by_its_starter(stores, fake_time):
    # Given failures, and an operator starting a retry job on all of them
    await seed_failures(stores, fake_time, 3)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", request(), actor=OPERATOR, now=fake_time.now())

    # When the job runs to its end
    fake_time.advance(1)
    await run_job_pages(runner, stores, fake_time)

    # Then the job names its creator, and the trail its start and its end, both as the operator's
    assert (await jobs.get("orders", job.id, now=fake_time.now())).created_by == OPERATOR
    finish, start = await trail(stores, integration="orders")
    assert (start.action, finish.action) == (AuditAction.JOB_START, AuditAction.JOB_FINISH)
    assert start.actor == finish.actor == OPERATOR
    assert start.target == finish.target == job.id
    assert start.details == {"action": "retry", "selection": {"all": True}, "total": 3}
    assert finish.details["state"] == "completed"
    assert (finish.details["processed"], finish.details["succeeded"], finish.details["failed"]) == (3, 3, 0)


async def test_a_cancel_is_the_cancellers_and_the_end_is_still_the_starters(stores, fake_time):
    # Given a job an operator started
    await seed_failures(stores, fake_time, 12)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", request(JobAction.DELETE), actor=OPERATOR, now=fake_time.now())

    # When an admin cancels it and it stops
    fake_time.advance(1)
    await jobs.cancel("orders", job.id, actor=ADA, now=fake_time.now())
    fake_time.advance(1)
    await run_job_pages(runner, stores, fake_time)

    # Then
    finish, cancel, start = await trail(stores, integration="orders")
    assert [(e.action, e.actor) for e in (start, cancel, finish)] == [
        (AuditAction.JOB_START, OPERATOR),
        (AuditAction.JOB_CANCEL, ADA),
        (AuditAction.JOB_FINISH, OPERATOR),
    ]
    assert finish.details["state"] == "cancelled"


async def test_a_job_the_sweep_gives_up_on_is_recorded_as_finished_and_failed(stores, fake_time):
    # Given a running job an operator started
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", request(), actor=OPERATOR, now=fake_time.now())

    # When recovery gives up on its page
    fake_time.advance(1)
    await runner.fail("orders", job.id, reason="gave up: poisoned", now=fake_time.now())

    # Then its end is in the trail, as the starter's
    [finish, _] = await trail(stores, integration="orders")
    assert (finish.action, finish.actor, finish.details["state"]) == (AuditAction.JOB_FINISH, OPERATOR, "failed")


async def test_a_replay_is_recorded_app_wide_with_what_it_moved(services, stores):
    # Given a message the host gave up on
    stores.inbound_poison.put(json.dumps({"id": "poisoned-1", "integration": "orders", "body_text": "{}"}))

    # When an operator replays recovery
    result = await services.sweeper.replay(actor=OPERATOR)

    # Then the trail has the replay, about no integration, with the counts
    [replay] = await trail(stores)
    assert (replay.action, replay.actor, replay.integration) == (AuditAction.RECOVERY_REPLAY, OPERATOR, None)
    assert result.reinserted == 1
    assert replay.details["reinserted"] == 1 and replay.details["by_queue"] == result.by_queue


async def test_a_job_whose_start_cannot_be_recorded_never_runs_and_frees_the_integration(stores, fake_time):
    # Given failures, and an audit trail that cannot be written once
    await seed_failures(stores, fake_time, 2)
    jobs, _ = make_jobs(stores, fake_time)
    stores.audit.arm("append", DOWN)

    # When a job is started
    with pytest.raises(StorageUnavailable):
        await jobs.start("orders", request(), actor=OPERATOR, now=fake_time.now())

    # Then no page was queued, the job ended as failed saying why, and the next start is not refused
    assert stores.job_pages.peek() == []
    [job] = await jobs.list("orders", now=fake_time.now())
    assert job.state is JobState.FAILED and "audit" in (job.last_error or "")
    await jobs.start("orders", request(), actor=OPERATOR, now=fake_time.now())


async def test_a_job_whose_first_page_cannot_be_queued_is_recorded_as_started_and_ended(stores, fake_time):
    # Given failures, and a jobs queue that refuses the first page
    await seed_failures(stores, fake_time, 2)
    jobs, _ = make_jobs(stores, fake_time)
    stores.job_pages.arm("send", StorageUnavailable("jobs queue down (injected)"))

    # When a job is started
    with pytest.raises(StorageUnavailable):
        await jobs.start("orders", request(), actor=OPERATOR, now=fake_time.now())

    # Then the trail tells the whole story (both at the same instant here): started, and finished as failed
    entries = {entry.action: entry for entry in await trail(stores, integration="orders")}
    assert set(entries) == {AuditAction.JOB_START, AuditAction.JOB_FINISH}
    assert entries[AuditAction.JOB_FINISH].details["state"] == "failed"


async def test_a_config_whose_change_cannot_be_recorded_answers_the_error(services, stores):
    # Given an audit trail that cannot be written
    stores.audit.arm("append", DOWN)

    # When / Then: the caller is told (the change itself stands; the log keeps audit.unrecorded)
    with pytest.raises(StorageUnavailable):
        await services.integrations.save("orders", CONFIG, actor=ADA)
    assert await stores.integrations.get("orders") is not None


async def test_a_stored_config_this_version_cannot_read_can_still_be_replaced_and_the_trail_says_so(services, stores):
    # Given a stored config that cannot be read back (as an older version stored them: min delay over the default max)
    unreadable = json.dumps({**CONFIG, "id": "orders", "retry": {"backoff": {"requeue_min_delay_seconds": 90}}})
    with pytest.raises(ValidationError) as caught:
        IntegrationConfig.model_validate_json(unreadable)
    stores.integrations.arm("get", caught.value)

    # When an admin replaces it
    config, _ = await services.integrations.save("orders", CONFIG, actor=ADA)

    # Then it is replaced, and the entry says the previous config could not be read
    assert config.name == "Orders"
    [put] = await trail(stores, integration="orders")
    assert put.details == {"created": True, "previous_unreadable": True}


async def test_the_retention_timer_purges_entries_past_audit_retention_days(stores):
    # Given a trail with the default retention of 365 days, an entry of 400 days ago and one of 300
    time = FakeTime()
    services = services_on(stores)
    old_at, kept_at = time.now() - timedelta(days=400), time.now() - timedelta(days=300)
    await services.audit.record(ADA, AuditAction.CONFIG_DELETE, integration="old", at=old_at)
    kept = await services.audit.record(ADA, AuditAction.CONFIG_DELETE, integration="new", at=kept_at)

    # When the timer purges
    removed = await services.audit.purge(now=time.now())

    # Then
    assert services.settings.audit_retention_days == 365
    assert removed == 1
    assert stores.audit.entries() == [kept]
