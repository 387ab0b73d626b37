"""Issue 19's portal controls in Chromium, each story at 1440×900 and at 390×844: find a message by its
correlation id (with sender suggestions) and export what is shown; Retry, Delete and Edit and retry from
the detail dialog; Mute and Unmute a failure group."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.e2e.portal_support import (
    UI_TIMEOUT_MS,
    ConsoleWatch,
    Message,
    browser_page,
    launch_chromium,
    screenshots,
    seed_failures,
)
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("tools_portal")]

VIEWPORTS: dict[str, ViewportSize] = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix(), JOB_RATE_LIMIT_PER_S="50", JOB_PAGE_SIZE="10")) as host:
        yield host


@pytest_asyncio.fixture(loop_scope="module")
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


@pytest_asyncio.fixture(loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text="rejected: order invalid")])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest.fixture(params=sorted(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, host: DevhostProcess, viewport: str) -> AsyncIterator[Page]:
    # Signed in as the dev admin (AUTH_MODE=dev, as `make run`); a 409 or 422 is provoked on purpose nowhere here.
    async with browser_page(browser, ConsoleWatch(), host, "admin") as page:
        await page.set_viewport_size(VIEWPORTS[viewport])
        yield page


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


async def axe_violations(page: Page, *selectors: str) -> list[str]:
    """axe-core's violations within the controls this file covers (the rest of the page is another story's)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the portal's CSP (script-src 'self') refuses an inline tag.
        source = await asyncio.to_thread(AXE.read_text, encoding="utf-8")
        await page.evaluate(f"(() => {{ {source}\n }})()")
    found = await page.evaluate(
        """async (selectors) => {
            const result = await window.axe.run({ include: selectors.map((s) => [s]) });
            return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
        }""",
        list(selectors),
    )
    return list(found)


def opener(page: Page, failure_id: str):
    return page.locator(f"tr[data-failure-id='{failure_id}'] td.reason button")


async def no_horizontal_overflow_from(page: Page, test_id: str) -> None:
    """The control fits the viewport: its right edge is within the page's width."""
    box = await page.get_by_test_id(test_id).bounding_box()
    width = page.viewport_size["width"] if page.viewport_size else 0
    assert box is not None and box["x"] + box["width"] <= width + 1, (test_id, box, width)


async def test_find_a_message_by_correlation_id_and_export_what_is_shown(page, http, receiver, host, viewport):
    # Given three failures, one carrying the correlation id a customer quoted
    name = f"find-{viewport}"
    await seed_failures(
        http, receiver, name,
        [
            Message({"order": "PO-4711"}, sender="Shop-EU", correlation_id="corr-4711"),
            Message({"order": "PO-1"}, sender="shop-us"),
            Message({"order": "PO-2"}, sender="warehouse"),
        ],
    )  # fmt: skip
    [wanted] = (await http.get(f"/integrations/{name}/failures", params={"ref": "corr-4711"})).json()["items"]
    await page.goto(f"{host.base_url}/portal#/integrations/{name}")
    table = page.get_by_test_id("failures-table").locator("tbody tr")
    await expect(table).to_have_count(3)
    await no_horizontal_overflow_from(page, "find-box")

    # When the operator types the correlation id into "Find a message"
    await page.get_by_test_id("find-input").fill("corr-4711")
    await page.get_by_role("button", name="Find", exact=True).click()

    # Then only that failure is listed, and the URL carries the search
    await expect(table).to_have_count(1)
    await expect(page.locator(f"tr[data-failure-id='{wanted['id']}']")).to_have_count(1)
    assert "ref=corr-4711" in page.url
    await screenshots(page, f"tools-find-{viewport}")
    assert (
        await axe_violations(page, "[data-testid=find-box]", "[data-testid=export]", "[data-testid=filter-bar]") == []
    )

    # And the sender filter suggests the known senders
    options = page.get_by_test_id("sender-suggestions").locator("option")
    await expect(options).to_have_count(3)

    # When what is shown is exported as CSV
    async with page.expect_download() as info:
        await page.get_by_test_id("export").click()
    download = await info.value

    # Then the file holds that one failure
    text = await asyncio.to_thread(Path(await download.path()).read_text)
    assert [row["id"] for row in csv.DictReader(io.StringIO(text))] == [wanted["id"]]
    assert download.suggested_filename.endswith(".csv")

    # When "Show all" is chosen, every failure is back
    await page.get_by_test_id("find-clear").click()
    await expect(table).to_have_count(3)

    # When the order number is looked for in the message bodies, in another case
    await page.get_by_test_id("find-mode-body_contains").check()
    await page.get_by_test_id("find-input").fill("po-4711")
    await page.get_by_role("button", name="Find", exact=True).click()

    # Then that failure is found, the list says it searches rather than counts, and "select all" is off
    await expect(table).to_have_count(1)
    await expect(page.locator(f"tr[data-failure-id='{wanted['id']}']")).to_have_count(1)
    await expect(page.get_by_test_id("match-count")).to_contain_text("Searching message bodies")
    await expect(page.get_by_test_id("select-all")).to_be_disabled()
    assert "body_contains=po-4711" in page.url
    assert await axe_violations(page, "[data-testid=find-box]") == []


async def test_edit_and_retry_from_the_detail_dialog_sends_the_corrected_body(page, http, receiver, host, viewport):
    # Given a failure the receiver refused
    name = f"edit-{viewport}"
    await seed_failures(http, receiver, name, [Message({"qty": -1})])
    [failure] = (await http.get(f"/integrations/{name}/failures")).json()["items"]
    await page.goto(f"{host.base_url}/portal#/integrations/{name}")

    # When the operator opens it, chooses Edit and retry, corrects the body and sends it
    await opener(page, failure["id"]).click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Edit and retry").click()
    body = dialog.get_by_test_id("edit-body")
    await expect(body).to_have_value('{"qty": -1}')
    await body.fill('{"qty": 1}')
    await screenshots(page, f"tools-edit-{viewport}", full_page=False)
    assert await axe_violations(page, ".detail-actions") == []
    await dialog.get_by_test_id("edit-send").click()

    # Then the dialog closes, the failure leaves the list, and the receiver got the corrected body
    await expect(dialog).to_have_count(0)
    await expect(page.locator(f"tr[data-failure-id='{failure['id']}']")).to_have_count(0)

    async def corrected() -> bool:
        return any(request.body == b'{"qty": 1}' for request in receiver.requests)

    await until(corrected, True)


async def test_retry_and_delete_from_the_detail_dialog_start_a_job_for_that_failure(
    page, http, receiver, host, viewport
):
    # Given two failures
    name = f"detail-{viewport}"
    await seed_failures(http, receiver, name, [Message({"n": 1}), Message({"n": 2})])
    first, second = (await http.get(f"/integrations/{name}/failures")).json()["items"]
    await page.goto(f"{host.base_url}/portal#/integrations/{name}")

    # When the operator deletes the first from its dialog, confirming
    await opener(page, first["id"]).click()
    dialog = page.get_by_role("dialog").first
    await dialog.get_by_role("button", name="Delete").click()
    await page.get_by_test_id("confirm").click()

    # Then a delete job for that one failure completes and it is gone
    card = page.get_by_test_id("job-card").first
    await expect(card).to_contain_text("Delete job")
    await expect(card).to_contain_text("1 selected failure")
    await expect(card.get_by_test_id("job-state")).to_have_text("completed")
    await expect(page.locator(f"tr[data-failure-id='{first['id']}']")).to_have_count(0)

    # When the second is retried from its dialog (the receiver still refuses)
    await opener(page, second["id"]).click()
    await page.get_by_role("dialog").get_by_role("button", name="Retry", exact=True).click()

    # Then a retry job for it appears and completes
    await expect(page.get_by_test_id("job-card").first).to_contain_text("Retry job")
    await expect(page.get_by_test_id("job-card").first.get_by_test_id("job-state")).to_have_text("completed")


async def test_mute_and_unmute_a_failure_group_from_the_groups_panel(page, http, receiver, host, viewport):
    # Given failures of one kind
    name = f"mute-{viewport}"
    await seed_failures(http, receiver, name, [Message({"n": n}) for n in range(2)])
    await page.goto(f"{host.base_url}/portal#/integrations/{name}")
    panel = page.get_by_test_id("groups-panel")

    # When the operator mutes the group, saying why
    await panel.get_by_test_id("mute").click()
    await page.get_by_test_id("mute-reason").fill("known: receiver rejects test orders")
    assert await axe_violations(page, "dialog") == []
    await page.get_by_test_id("mute-confirm").click()

    # Then the group shows as muted, with who and why, and the overview no longer counts it
    await expect(panel.get_by_test_id("muted-note")).to_contain_text("known: receiver rejects test orders")
    await expect(panel.get_by_test_id("unmute")).to_be_visible()
    overview = {item["integration"]: item for item in (await http.get("/failures")).json()["items"]}
    assert overview[name]["count"] == 0
    await screenshots(page, f"tools-muted-{viewport}")
    assert await axe_violations(page, "[data-testid=groups-panel]") == []

    # When it is unmuted
    await panel.get_by_test_id("unmute").click()

    # Then it counts again
    await expect(panel.get_by_test_id("mute")).to_be_visible()
    await expect(panel.get_by_test_id("muted-note")).to_have_count(0)
    overview = {item["integration"]: item for item in (await http.get("/failures")).json()["items"]}
    assert overview[name]["count"] == 2
