"""The portal as people use it (issue 19), on a laptop (1440×900) and on a phone (390×844): every page
state passes axe-core with no violation and never scrolls sideways; a storage outage (Azurite frozen
with SIGSTOP) shows a banner and "unknown", never zeros, and the page recovers by itself; quick time
ranges and the time zone; cards and folded filters on the phone; large bodies cut with "Show all";
the jobs strip; auto-refresh.

The module runs its own Azurite (freezing the session's would stall other modules' hosts) and its own
devhost. Browsers are made with `bypass_csp` so axe-core can be injected, in Europe/Amsterdam with an
en-GB locale, so times name their zone as "CET".
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.e2e.portal_support import (
    DESKTOP,
    PHONE,
    UI_TIMEOUT_MS,
    ConsoleWatch,
    Message,
    assert_accessible,
    browser_page,
    launch_chromium,
    screenshots,
    seed_failures,
    until,
)
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("portal-ux")]

VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
#: A receiver's refusal long enough to be cut to two lines in the list.
LONG_REFUSAL = "rejected: order invalid because " + " ".join(
    f"line {n} has an unknown article number" for n in range(8)
)
#: What a page must not say while storage is frozen: a false all-clear, or storage internals.
FALSE_OR_INTERNAL = (
    "No sweep has run yet",
    "No failures. Every message was delivered",
    "no answer within",
    "uxfailure",
)
#: The portal's auto-refresh period, plus a margin for a 2-core machine.
REFRESH_WAIT_MS = 40_000

expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[AzuriteProcess]:
    process = AzuriteProcess(extent_memory_limit_mb=256)
    process.start()
    try:
        yield process
    finally:
        process.thaw()  # never leave it stopped, whatever a test did
        process.stop()


@pytest.fixture(scope="module")
def host(own_azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(own_azurite, unique_prefix(), JOB_RATE_LIMIT_PER_S="50")) as host:
        yield host


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture(params=list(VIEWPORTS))
def screen(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, console: ConsoleWatch, host: DevhostProcess, screen: str) -> AsyncIterator[Page]:
    async with browser_page(
        browser,
        console,
        host,
        "admin",
        viewport=VIEWPORTS[screen],
        bypass_csp=True,
        timezone_id="Europe/Amsterdam",
        locale="en-GB",
    ) as page:
        yield page


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text=LONG_REFUSAL)])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


def portal_url(host: DevhostProcess, route: str = "#/") -> str:
    return f"{host.base_url}/portal{route}"


def rows(page: Page):
    return page.get_by_test_id("failures-table").locator("tbody tr")


async def open_filters(page: Page, screen: str) -> None:
    """On the phone the filters are folded behind a button; on the laptop they are always open."""
    if screen == "phone":
        await page.get_by_test_id("filters-toggle").click()
    await expect(page.get_by_test_id("filter-bar")).to_be_visible()


async def test_every_page_state_passes_axe_and_fits_the_screen(page, screen, http, receiver, host):
    # Given an integration with failures and a finished retry job
    name = f"axe-{screen}"
    await seed_failures(http, receiver, name, [Message({"n": n}) for n in range(3)])
    started = await http.post(f"/integrations/{name}/jobs", json={"action": "retry", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    job_path = f"/integrations/{name}/jobs/{started.json()['id']}"
    await until(lambda: job_state(http, job_path), "completed")
    await until(lambda: failure_total(http, name), 3)  # the receiver refuses them again

    # When the user goes through the overview, the list, the filters, the jobs, a failure, audit, settings
    # and alerts, then in each state axe finds nothing and the page does not scroll sideways
    await page.goto(portal_url(host))
    await expect(page.get_by_test_id("overview-table").locator(f"tr[data-integration='{name}']")).to_be_visible()
    await expect(page.get_by_test_id("recovery-count")).to_have_text("0")
    await assert_accessible(page, "overview")
    await screenshots(page, f"ux-overview-{screen}")

    await page.goto(portal_url(host, f"#/integrations/{name}"))
    await expect(rows(page)).to_have_count(3)
    await assert_accessible(page, "integration list")
    await screenshots(page, f"ux-list-{screen}")

    await open_filters(page, screen)
    await assert_accessible(page, "filters open")

    await page.get_by_test_id("jobs-toggle").click()
    await expect(page.get_by_test_id("job-card").first).to_be_visible()
    await assert_accessible(page, "job strip expanded")

    await rows(page).first.locator("td.reason button").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_test_id("history-table")).to_be_visible()
    await assert_accessible(page, "detail dialog")
    await screenshots(page, f"ux-detail-{screen}", full_page=False)
    await page.keyboard.press("Escape")

    for route, ready, state in [
        ("#/audit", page.get_by_test_id("audit-table").locator("tbody tr").first, "audit"),
        (f"#/integrations/{name}/settings", page.get_by_test_id("settings-form"), "settings"),
        ("#/alerts", page.get_by_role("heading", level=2, name="History"), "alerts"),
    ]:
        await page.goto(portal_url(host, route))
        await expect(ready).to_be_visible()
        await assert_accessible(page, state)


async def test_a_storage_outage_shows_a_banner_and_unknowns_and_the_page_recovers_by_itself(
    page, screen, console, http, receiver, host, own_azurite
):
    # Given an integration with two failures, and the overview showing them
    console.allow_status(503, 504)
    name = f"outage-{screen}"
    await seed_failures(http, receiver, name, [Message({"n": 1}), Message({"n": 2})])
    await page.goto(portal_url(host))
    await expect(page.get_by_test_id("overview-table").locator(f"tr[data-integration='{name}']")).to_be_visible()
    await expect(page.get_by_test_id("recovery-count")).to_have_text("0")

    own_azurite.freeze()
    try:
        # When storage stops answering and the overview is refreshed
        await page.get_by_role("button", name="Refresh", exact=True).first.click()

        # Then a banner says so and retries by itself, and every figure that failed is unknown
        banner = page.get_by_test_id("outage-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Rebound is not answering")
        await expect(banner.get_by_test_id("outage-countdown")).to_contain_text(re.compile(r"Retrying (in \d+ s|now)"))
        await expect(page.get_by_test_id("recovery-count")).to_have_text("unknown")
        await expect(page.get_by_test_id("poison-count")).to_have_text("unknown")
        await expect(page.get_by_test_id("last-sweep")).to_have_text("unknown")
        await expect(page.get_by_role("main")).to_contain_text("Failure counts are unknown")
        await expect(page.get_by_test_id("others-unknown")).to_be_visible()
        text = await page.locator("body").inner_text()
        for wrong in FALSE_OR_INTERNAL:
            assert wrong not in text
        await assert_accessible(page, "outage banner")
        await screenshots(page, f"ux-outage-{screen}")

        # When the user opens the integration meanwhile
        await page.goto(portal_url(host, f"#/integrations/{name}"))
        await page.evaluate("() => true")  # a hash change: the page is not reloaded

        # Then the header does not claim there is no configuration, and the count is unknown, not zero
        head = page.locator(".page-head .sub").first
        await expect(head).to_contain_text("configuration unknown")
        await expect(page.get_by_test_id("match-count")).to_have_attribute("data-state", "unknown")
        await expect(page.get_by_test_id("match-count")).to_contain_text("unknown")
        assert "no configuration" not in await head.inner_text()
    finally:
        own_azurite.thaw()

    # When storage answers again, then without a reload the banner goes and the real figures come back
    await expect(page.get_by_test_id("outage-banner")).to_be_hidden(timeout=60_000)
    await expect(rows(page)).to_have_count(2)
    await expect(page.get_by_test_id("match-count")).to_have_text("2 failures in total.")
    await expect(page.locator(".page-head .sub").first).not_to_contain_text("unknown")
    await expect(page.get_by_role("status").filter(has_text="answers again")).to_be_visible()


async def test_quick_ranges_slide_with_the_clock_and_every_time_names_its_zone(page, screen, http, receiver, host):
    # Given an integration with two failures, its page open in Amsterdam (CET in November)
    name = f"ranges-{screen}"
    await seed_failures(http, receiver, name, [Message({"n": 1}), Message({"n": 2})])
    await page.goto(portal_url(host, f"#/integrations/{name}"))
    await expect(rows(page)).to_have_count(2)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/failures?" in request.url else None)

    # When the user picks "Last hour"
    await open_filters(page, screen)
    await page.get_by_role("group", name="Quick time range").get_by_role("button", name="Last hour").click()

    # Then the URL keeps the range (not a fixed time), the button is pressed, and the API was asked from an hour ago
    await expect(page.get_by_role("button", name="Last hour")).to_have_attribute("aria-pressed", "true")
    assert "range=1h" in page.url
    await expect(rows(page)).to_have_count(2)
    await until(lambda: asyncio.sleep(0, result=bool(asked)), True)
    froms = [httpx.URL(url).params.get("from") for url in asked]
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert any(f and abs(datetime.fromisoformat(f) - an_hour_ago) < timedelta(minutes=2) for f in froms), froms

    # And every time names its zone, as the from/to hints do
    first_time = rows(page).first.locator("time")
    await expect(first_time).to_have_text(re.compile(r"\d\d:\d\d:\d\d CET$"))
    await expect(page.get_by_test_id("filter-bar")).to_contain_text("In CET")

    # When the user switches the header to UTC
    await page.get_by_test_id("zone-switch").check()

    # Then the same instant reads in UTC, the hints follow, and the choice outlives a reload
    await expect(first_time).to_have_text(re.compile(r"\d\d:\d\d:\d\d UTC$"))
    await expect(page.get_by_test_id("filter-bar")).to_contain_text("In UTC")
    await page.reload()
    await expect(rows(page).first.locator("time")).to_have_text(re.compile(r"UTC$"))
    await page.get_by_test_id("zone-switch").uncheck()
    await expect(rows(page).first.locator("time")).to_have_text(re.compile(r"CET$"))

    # When the same range is pressed again, it is cleared
    await open_filters(page, screen)
    await page.get_by_role("button", name="Last hour").click()
    await expect(page.get_by_role("button", name="Last hour")).to_have_attribute("aria-pressed", "false")
    assert "range=" not in page.url


async def test_the_phone_gets_cards_and_folded_filters_and_the_reason_shows_whole_on_focus(
    page, screen, http, receiver, host
):
    # Given an integration whose receiver refused with a long text
    name = f"layout-{screen}"
    await seed_failures(http, receiver, name, [Message({"n": 1}), Message({"n": 2})])
    await page.goto(portal_url(host, f"#/integrations/{name}"))
    await expect(rows(page)).to_have_count(2)

    first = rows(page).first
    reason = first.locator("td.reason button")
    width = (await first.bounding_box() or {"width": 0})["width"]
    if screen == "phone":
        # Then on the phone each failure is a card as wide as the screen, and the filters are folded
        assert await first.evaluate("row => getComputedStyle(row).display") == "block"
        assert width <= PHONE["width"]
        await expect(page.get_by_test_id("filter-bar")).to_be_hidden()
        toggle = page.get_by_test_id("filters-toggle")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await toggle.click()
        await expect(page.get_by_test_id("filter-bar")).to_be_visible()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
    else:
        # Then on the laptop the table has its header and a wide reason column, and the filters are open
        await expect(page.get_by_test_id("failures-table").locator("thead")).to_be_visible()
        await expect(page.get_by_test_id("filters-toggle")).to_be_hidden()
        await expect(page.get_by_test_id("filter-bar")).to_be_visible()
        assert (await first.locator("td.reason").bounding_box() or {"width": 0})["width"] >= 300
        wrap = page.locator(".table-wrap.failures")
        assert await wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), "the table scrolls sideways"

    # And the reason is cut to two lines, whole in its tooltip, and whole while it has the keyboard focus
    full = await reason.get_attribute("title")
    assert full is not None and "line 4 has an unkno" in full
    assert full == await reason.text_content()
    clamped = await reason.evaluate("b => b.getBoundingClientRect().height")
    await reason.focus()
    opened = await reason.evaluate("b => b.getBoundingClientRect().height")
    assert opened > clamped
    await assert_accessible(page, "list with a focused reason")
    await screenshots(page, f"ux-layout-{screen}")


async def test_a_large_body_shows_its_first_64_kib_with_show_all_and_download(page, screen, http, receiver, host):
    # Given a failure whose JSON body is about 383 KiB
    name = f"large-{screen}"
    body = {"lines": [{"sku": f"A-{n:06d}", "text": "x" * 40} for n in range(5250)]}
    raw = json.dumps(body).encode()
    assert 370 * 1024 < len(raw) < 400 * 1024
    await seed_failures(http, receiver, name, [Message(raw=raw)])
    await page.goto(portal_url(host, f"#/integrations/{name}"))

    # When the user opens it
    await rows(page).first.locator("td.reason button").click()
    dialog = page.get_by_role("dialog")

    # Then the first 64 KiB are shown, and the note says how much there is
    note = dialog.get_by_test_id("content-cut")
    await expect(note).to_contain_text(re.compile(r"Showing the first 64 KiB of 3\d\d(\.\d)? KiB"))
    pretty = dialog.get_by_test_id("content-pretty")
    assert len(await pretty.text_content() or "") == 64 * 1024
    await assert_accessible(page, "detail dialog with a large body")

    # When the user downloads it, the file is the whole body
    async with page.expect_download() as info:
        await note.get_by_role("button", name="Download").click()
    download = await info.value
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == raw

    # When the user asks for all of it, all of it is shown
    await note.get_by_role("button", name="Show all").click()
    await expect(dialog.get_by_test_id("content-cut")).to_have_count(0)
    assert await pretty.text_content() == json.dumps(body, indent=2)


async def test_a_job_lives_in_a_strip_below_the_filters_and_unfolds_into_its_card(page, screen, http, receiver, host):
    # Given three failures, their page open
    name = f"strip-{screen}"
    await seed_failures(http, receiver, name, [Message({"n": n}) for n in range(3)])
    await page.goto(portal_url(host, f"#/integrations/{name}"))
    await expect(rows(page)).to_have_count(3)
    strip = page.get_by_test_id("jobs-strip")
    await expect(strip.get_by_test_id("job-summary")).to_contain_text("No jobs yet")

    # When the user retries all of them (the receiver refuses them again)
    await page.get_by_test_id("select-all").check()
    await page.get_by_role("button", name="Retry", exact=True).click()
    await page.get_by_role("dialog").get_by_role("button", name="Retry 3 failures").click()

    # Then the strip sums the job up in one line, folded, and sits below the filters, above the list
    summary = strip.get_by_test_id("job-summary")
    await expect(summary).to_have_attribute("data-state", "completed")
    await expect(summary).to_contain_text("Retry job")
    await expect(summary).to_contain_text("3 of 3")
    await expect(page.get_by_test_id("job-card")).to_be_hidden()
    filters_box = await page.get_by_role("region", name="Filters").bounding_box()
    strip_box = await strip.bounding_box()
    table_box = await page.get_by_test_id("failures-table").bounding_box()
    assert filters_box and strip_box and table_box
    assert filters_box["y"] < strip_box["y"] < table_box["y"]
    assert strip_box["height"] < (240 if screen == "phone" else 100)

    # When the user unfolds it, the card shows the job's figures
    toggle = strip.get_by_test_id("jobs-toggle")
    await expect(toggle).to_have_text("Show jobs (1)")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    card = page.get_by_test_id("job-card").first
    await expect(card).to_be_visible()
    await expect(card.locator("[data-stat='processed']")).to_have_text("3 of 3")
    unfolded = await strip.bounding_box()
    assert unfolded and unfolded["height"] > strip_box["height"] + 100
    await expect(card).to_contain_text("CET")


async def test_the_overview_and_the_list_refresh_by_themselves_and_hold_while_rows_are_selected(
    page, screen, http, receiver, host
):
    # Given the overview open, and then a new integration failing
    name = f"fresh-{screen}"
    await page.goto(portal_url(host))
    await expect(page.get_by_test_id("refresh-state")).to_contain_text("every 15 s")
    await seed_failures(http, receiver, name, [Message({"n": 1})])

    # Then it appears without a reload
    await expect(page.get_by_test_id("overview-table").locator(f"tr[data-integration='{name}']")).to_be_visible(
        timeout=REFRESH_WAIT_MS
    )

    # When its page is open and another message fails, the list grows by itself
    await page.goto(portal_url(host, f"#/integrations/{name}"))
    await expect(rows(page)).to_have_count(1)
    answer = await http.post(f"/integrations/{name}/messages", json={"n": 2}, headers={"X-Sender": "shop"})
    assert answer.status_code == 202
    await expect(rows(page)).to_have_count(2, timeout=REFRESH_WAIT_MS)
    await expect(page.get_by_test_id("match-count")).to_have_text("2 failures in total.")

    # When a row is selected, the refresh holds (rows would move under the person) and says why
    await rows(page).first.get_by_role("checkbox").check()
    await expect(page.get_by_test_id("refresh-state")).to_contain_text("on hold while rows are selected")

    # When the user pauses it, it says so, and the choice is kept for the next page
    await rows(page).first.get_by_role("checkbox").uncheck()
    toggle = page.get_by_test_id("auto-refresh")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(page.get_by_test_id("refresh-state")).to_contain_text("paused")
    await page.goto(portal_url(host))
    await expect(page.get_by_test_id("auto-refresh")).to_have_attribute("aria-pressed", "false")

    # When someone who asked for reduced motion opens the portal without a choice of their own
    await page.evaluate("() => localStorage.removeItem('rebound.autoRefresh')")
    await page.emulate_media(reduced_motion="reduce")
    await page.reload()

    # Then auto-refresh starts paused (content that changes by itself is motion they did not start)
    await expect(page.get_by_test_id("auto-refresh")).to_have_attribute("aria-pressed", "false")
    await expect(page.get_by_test_id("refresh-state")).to_contain_text("paused")
    await page.emulate_media(reduced_motion="no-preference")
    await page.evaluate("() => localStorage.removeItem('rebound.autoRefresh')")
    await page.reload()
    await expect(page.get_by_test_id("auto-refresh")).to_have_attribute("aria-pressed", "true")


async def job_state(http: httpx.AsyncClient, path: str) -> str:
    response = await http.get(path)
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


async def failure_total(http: httpx.AsyncClient, integration: str) -> int:
    response = await http.get(f"/integrations/{integration}/failures/count")
    assert response.status_code == 200, response.text
    return int(response.json()["count"])
