"""Send elsewhere (issue 19): a retry job with a `target` delivers its selection once to that endpoint."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.audit.models import AuditAction
from shared.egress import EgressPolicy
from shared.errors import RequestValidationError
from shared.jobs.batches import JobBatches
from shared.jobs.lifecycle import JobLifecycle
from shared.jobs.models import JobRequest, JobState
from shared.jobs.runner import JobRunner
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from tests.support.auth import TESTER
from tests.twins.senders import OneSender, ok, scripted, status
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import audit_on, make_jobs, run_job_pages, seed_failures

TARGET = {"kind": "http", "url": "https://archive.example/in"}


def send_all(target: dict | None = None) -> JobRequest:
    return JobRequest.model_validate({"action": "retry", "selection": {"all": True}, "target": target or TARGET})


def jobs_sending_with(stores: MemoryStores, fake_time, sender, *, egress: EgressPolicy | None = None):
    """`make_jobs`, with the runner's batches able to send (the `Services` wiring: `senders=`)."""
    jobs, runner = make_jobs(stores, fake_time)
    inbound = InboundShards(stores.inbound_shards)
    batches = JobBatches(failures=stores.failures, payloads=stores.payloads, inbound=inbound, senders=OneSender(sender))
    runner = JobRunner(
        jobs=stores.jobs, failures=stores.failures, pages=runner.pages, batches=batches, inbound=inbound,
        metrics=Metrics(), audit=audit_on(stores, fake_time), sleep=fake_time.sleep, monotonic=fake_time.monotonic,
    )  # fmt: skip
    lifecycle = JobLifecycle(
        jobs=stores.jobs, integrations=stores.integrations, failures=stores.failures, pages=runner.pages,
        audit=audit_on(stores, fake_time), egress=egress or EgressPolicy(),
    )  # fmt: skip
    return lifecycle, runner


async def test_a_target_job_delivers_each_message_once_there_and_removes_what_it_took(stores, fake_time):
    # Given three failures and a target that takes the first two and refuses the third
    failures = await seed_failures(stores, fake_time, 3)
    sender = scripted([ok(), ok(), status(400, detail="schema")])
    jobs, runner = jobs_sending_with(stores, fake_time, sender)

    # When a job sends them elsewhere
    job = await jobs.start("orders", send_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then each message went to the target once, with its id and body, and nothing to inbound
    assert sorted(d.message_id for d in sender.sent) == sorted(f.message_id for f in failures)
    assert stores.inbound.peek() == []
    # And the two taken are gone, the refused one stays, and the job says so
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.succeeded, done.failed) == (JobState.COMPLETED, 2, 1)
    assert "answered 400" in (done.last_error or "")
    assert (await stores.failures.summary("orders")).count == 1
    assert done.target is not None and done.target.kind == "http"
    # And nothing is left for the engine to settle: what the target took is delivered, nothing pending
    assert (done.resent, done.delivered, done.failed_again, done.pending) == (2, 2, 0, 0)


async def test_the_audit_trail_records_where_a_job_sent(stores, fake_time):
    await seed_failures(stores, fake_time, 1)
    jobs, _ = jobs_sending_with(stores, fake_time, scripted([ok()]))
    target = {**TARGET, "headers": {"Authorization": "Bearer literal-secret"}}
    await jobs.start("orders", send_all(target), actor=TESTER, now=fake_time.now())
    [entry] = [e for e in stores.audit.entries() if e.action is AuditAction.JOB_START]
    assert entry.details["target"] == {"kind": "http", "url": "https://archive.example/in", "method": "POST"}
    assert "literal-secret" not in str(entry.details)


async def test_a_target_the_egress_policy_refuses_is_a_field_error(stores, fake_time):
    await seed_failures(stores, fake_time, 1)
    jobs, _ = jobs_sending_with(stores, fake_time, scripted([ok()]))
    with pytest.raises(RequestValidationError) as refused:
        await jobs.start(
            "orders", send_all({"kind": "http", "url": "http://10.0.0.5/in"}), actor=TESTER, now=fake_time.now()
        )
    assert refused.value.details["fields"][0]["field"] == "target.url"
    assert stores.jobs.lock_holder("orders") is None


def test_a_delete_job_takes_no_target():
    with pytest.raises(ValidationError, match="target is for retry jobs only"):
        JobRequest.model_validate({"action": "delete", "selection": {"all": True}, "target": TARGET})
