"""The timeline and a retry job's two phases in the portal, in Chromium against devhost and Azurite (issues 17
and 19): a retry whose messages fail again says so on its card, and the failure's detail tells the story."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.e2e.portal_support import (
    UI_TIMEOUT_MS,
    ConsoleWatch,
    Message,
    browser_page,
    failure_count,
    launch_chromium,
    screenshots,
    seed_failures,
    until,
)
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("timeline-portal")]


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix(), JOB_RATE_LIMIT_PER_S="20")) as host:
        yield host


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, host: DevhostProcess) -> AsyncIterator[Page]:
    async with browser_page(browser, ConsoleWatch(), host, "admin") as page:
        yield page


@pytest_asyncio.fixture(loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text="rejected: order invalid")])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


expect.set_options(timeout=UI_TIMEOUT_MS)


async def test_a_retry_that_failed_again_shows_on_its_card_and_in_the_failures_timeline(page, http, receiver, host):
    # Given two failures, retried by a job while the receiver still refuses them
    await seed_failures(http, receiver, "timeline", [Message({"n": n}) for n in range(2)])
    started = await http.post("/integrations/timeline/jobs", json={"action": "retry", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    async def failed_again() -> object:
        return (await http.get(f"/integrations/timeline/jobs/{job_id}")).json()["failed_again"]

    await until(failed_again, 2)
    await until(lambda: failure_count(http, "timeline"), 2)

    # When the user opens the integration
    await page.goto(f"{host.base_url}/portal#/integrations/timeline")

    # Then the job card shows both phases: resent, and how they settled
    card = page.get_by_test_id("job-card").first
    await expect(card.get_by_test_id("job-settled")).to_have_text("Resent 2 · Delivered 0 · Failed again 2 · 0 pending")

    # When the user opens one of the failures
    await page.get_by_test_id("failures-table").locator("tbody tr td.reason button").first.click()
    dialog = page.get_by_role("dialog")

    # Then its timeline tells the story, oldest first
    events = dialog.get_by_test_id("timeline").locator("li")
    await expect(events).to_have_count(6)
    assert await events.evaluate_all("items => items.map(item => item.dataset.event)") == [
        "received", "attempt", "failed", "resent", "attempt", "failed"
    ]  # fmt: skip
    await expect(events.nth(3)).to_contain_text(f"by job {job_id} (started by admin)")
    await expect(events.nth(2)).to_contain_text("rejected: order invalid")
    await screenshots(page, "detail-timeline", full_page=False)
