"""The `jobs` queue message: one format, written by the job pages and read by the runner and the recovery sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import BadParameter
from shared.jobs.models import JobAction, JobLimits, JobRequest, JobSelection
from shared.jobs.pages import CLAIM_GRACE, JobPages
from shared.jobs.ports import PageMessage
from tests.support.auth import TESTER
from tests.unit.on_twins import make_jobs, seed_failures


def test_a_page_message_reads_back_as_written_and_counts_its_reinserts():
    assert PageMessage.parse(PageMessage("orders", "j-1").text()) == PageMessage("orders", "j-1", 0)
    assert PageMessage.parse(PageMessage("orders", "j-1", 2).text().encode()) == PageMessage("orders", "j-1", 2)
    # The host's first delivery carries no count: the key is only written once the sweep moved it
    assert "recovery_count" not in PageMessage("orders", "j-1").text()


@pytest.mark.parametrize(
    "raw",
    ["not json", "[]", '"text"', '{"job_id": "j-1"}', '{"integration": "orders"}', '{"integration": "o", '
     '"job_id": "j", "recovery_count": "many"}'],
)  # fmt: skip
def test_anything_else_is_a_bad_message(raw: str):
    with pytest.raises(BadParameter) as caught:
        PageMessage.parse(raw)

    assert caught.value.details["parameter"] == "message"


async def test_the_runner_refuses_a_message_that_is_no_page(stores, fake_time):
    _, runner = make_jobs(stores, fake_time)

    with pytest.raises(BadParameter):
        await runner.run_page(b"{}", message_id="m-1", now=fake_time.now())


async def test_a_queued_page_is_a_page_message_of_its_job(stores, fake_time):
    await seed_failures(stores, fake_time, 1)
    jobs, _ = make_jobs(stores, fake_time)

    job = await jobs.start(
        "orders",
        JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True)),
        actor=TESTER,
        now=fake_time.now(),
    )

    [message] = stores.job_pages.drain()
    assert PageMessage.parse(message.body) == PageMessage("orders", job.id)


def test_a_claim_lapses_a_grace_after_a_page_should_have_finished_at_the_rate_limit(stores):
    pages = JobPages(stores.job_pages, limits=JobLimits(page_size=100, rate_per_s=50.0, max_inbound_depth=10))

    assert pages.claim_timeout == timedelta(seconds=2) + CLAIM_GRACE
