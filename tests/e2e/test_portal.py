"""The Failures page in a real browser: Debian's Chromium driven by Playwright, against devhost and
Azurite, with failures made by a real receiver that answers 400.

Each test is one user story. Every test fails on a console error or an uncaught exception in the
page; a test that provokes an error answer on purpose (409, 422, 401) allows only Chromium's own
"Failed to load resource" line for that status. Screenshots of each main view, light and dark,
land in tests/e2e/artifacts/.

The host runs in AUTH_MODE=dev, as `make run` does: `page` is a browser signed in as the dev admin
(devhost's session cookie), `anonymous_page` one signed in as nobody, who signs in through devhost's
login page as a user would. The key form is the story of a second host in AUTH_MODE=key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import FUNCTION_KEY, app_env, client, running_app, unique_prefix
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

#: One event loop for the module (the browser lives in it), and one xdist worker for all its
#: tests, so devhost and Chromium start once.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("portal")]

#: Jobs run at 10 items/s in pages of 10: a 20-failure job stays active for about 2 s, long enough
#: to be met by a second start and cancelled after its first page, and short enough to watch to the end.
HOST_SETTINGS = {"JOB_RATE_LIMIT_PER_S": "10", "JOB_PAGE_SIZE": "10"}


@pytest.fixture(scope="module")
def host_prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess, host_prefix: str) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, host_prefix, **HOST_SETTINGS)) as host:
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


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, console: ConsoleWatch, host: DevhostProcess) -> AsyncIterator[Page]:
    async with browser_page(browser, console, host, "admin") as page:
        yield page


@pytest_asyncio.fixture(loop_scope="module")
async def anonymous_page(browser: Browser, console: ConsoleWatch, host: DevhostProcess) -> AsyncIterator[Page]:
    # Before anyone signs in the page asks who is (401): Chromium logs that answer, which is expected here.
    console.allow_status(401)
    async with browser_page(browser, console, host, None) as page:
        yield page


@pytest.fixture(scope="module")
def key_host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix(), AUTH_MODE="key")) as host:
        yield host


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


def portal_url(host: DevhostProcess, route: str = "#/", *, key: str | None = None) -> str:
    """The portal's URL, optionally pointing at a view; in key mode `make run` prints it with `?code=<key>`."""
    return f"{host.base_url}/portal" + (f"?code={key}" if key else "") + route


def rows(page: Page):
    return page.get_by_test_id("failures-table").locator("tbody tr")


async def test_the_overview_lists_integrations_by_last_failure_and_opens_one(page, http, receiver, host):
    # Given two integrations with failures, the second failing last
    await seed_failures(http, receiver, "ovolder", [Message({"n": 1})])
    await seed_failures(http, receiver, "ovnewer", [Message({"n": 1}), Message({"n": 2}, sender="pos")])

    # When the portal is opened by the signed-in admin
    await page.goto(portal_url(host))

    # Then the header says who is signed in, and the newest failure comes first
    await expect(page.get_by_test_id("signed-in-as")).to_have_text("admin")
    await expect(page.get_by_test_id("signed-in-role")).to_have_text("Admin")
    table = page.get_by_test_id("overview-table")
    await expect(table.locator("tr[data-integration='ovolder']")).to_be_visible()
    order = await table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.integration)")
    assert order.index("ovnewer") < order.index("ovolder")
    newer = table.locator("tr[data-integration='ovnewer']")
    await expect(newer.locator("td").nth(0)).to_have_text("2")
    await expect(newer).to_contain_text("endpoint 2")
    await expect(page.get_by_test_id("recovery-panel")).to_contain_text("Poisoned")
    # And the activity panel shows what the engine did, per integration too
    activity = page.get_by_test_id("activity-panel")
    await expect(activity.locator("tr[data-counter='failures'] td").first).not_to_have_text("0")
    await expect(activity.locator("li[data-integration='ovnewer']")).to_contain_text("2 received")
    await screenshots(page, "overview")

    # When the user clicks the integration
    await newer.get_by_role("link", name="ovnewer").click()

    # Then its failures page lists both failures, newest first, with the columns of the spec
    await expect(page.get_by_role("heading", level=1)).to_have_text("ovnewer")
    await expect(rows(page)).to_have_count(2)
    headers = await page.get_by_test_id("failures-table").locator("thead th").all_inner_texts()
    assert [h.strip().lower() for h in headers[1:]] == [
        "time",
        "reason",
        "origin",
        "sender",
        "receiver",
        "status",
        "attempts",
        "resends",
    ]
    times = await rows(page).locator("time").evaluate_all("ts => ts.map(t => t.dateTime)")
    assert times == sorted(times, reverse=True)
    await expect(rows(page).first).to_contain_text("400")


async def test_in_key_mode_the_url_key_is_taken_and_dropped_from_the_address_bar(browser, console, key_host):
    # Given a host in key mode, and the URL `make run` prints there (the key in `?code=`)
    async with browser_page(browser, console, key_host, None) as page:
        # When the portal is opened with it
        await page.goto(portal_url(key_host, key=FUNCTION_KEY))

        # Then the overview opens, the key is dropped from the address bar, and the header says a key is set
        await expect(page.get_by_role("heading", level=1)).to_have_text("Failures")
        assert "code=" not in page.url
        await expect(page.get_by_test_id("account")).to_contain_text("Function key set")


async def test_in_key_mode_the_key_is_asked_for_once_and_kept_for_the_browser_session(browser, console, key_host):
    # Given a host in key mode, and a portal URL without a key
    console.allow_status(401)
    async with browser_page(browser, console, key_host, None) as page:
        await page.goto(portal_url(key_host))

        # When the user enters a wrong key, then the right one
        form = page.get_by_test_id("key-form")
        await form.get_by_label("Function key").fill("wrong")
        await form.get_by_role("button", name="Open the portal").click()
        await expect(page.get_by_role("alert").filter(has_text="not accepted")).to_be_visible()
        await form.get_by_label("Function key").fill(FUNCTION_KEY)
        await form.get_by_role("button", name="Open the portal").click()

        # Then the overview opens, and a reload in the same tab needs no key again
        await expect(page.get_by_role("heading", level=1)).to_have_text("Failures")
        await page.reload()
        await expect(page.get_by_test_id("recovery-panel")).to_be_visible()
        await expect(page.get_by_test_id("key-form")).to_have_count(0)
        assert await page.evaluate("sessionStorage.getItem('rebound.functionKey')") == FUNCTION_KEY


async def test_without_recovery_routes_the_panel_says_recovery_status_is_unavailable(page, console, host):
    # Given a server that answers 404 for /recovery (one without the recovery surface)
    console.allow_status(404)
    await page.route("**/api/recovery", lambda route: route.fulfill(status=404, json={"error": {"code": "not_found"}}))

    # When the overview opens
    await page.goto(portal_url(host))

    # Then the panel says so, and the rest of the page works
    unavailable = page.get_by_test_id("recovery-unavailable")
    await expect(unavailable).to_have_text("Recovery status unavailable on this server.")
    await expect(page.get_by_role("heading", level=2, name="Integrations with failures")).to_be_visible()


async def test_the_page_and_its_files_are_served_to_anyone_and_nothing_outside_portal(host):
    # Given a client that is not signed in
    async with httpx.AsyncClient(base_url=host.base_url, timeout=10, trust_env=False) as anonymous:
        # When it asks for the page, a script, a trailing-slash URL and paths that climb out of portal/
        page = await anonymous.get("/portal")
        script = await anonymous.get("/portal/js/main.js")
        slash = await anonymous.get("/portal/?code=k")
        climbs = [await anonymous.get(path) for path in ("/portal/%2e%2e/host.json", "/portal/..%2fhost.json")]
        api = await anonymous.get("/failures")
        config = await anonymous.get("/portal/config")

    # Then the files and the sign-in config come with their types, the slash redirects, the climbs are 404,
    # and the API still needs a sign-in
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert (slash.status_code, slash.headers["location"]) == (308, "/api/portal?code=k")
    assert [response.status_code for response in climbs] == [404, 404]
    assert api.status_code == 401
    assert config.json() == {"auth_mode": "dev", "sign_in": "/.auth/login/dev", "sign_out": "/.auth/logout"}


async def test_filter_then_retry_a_subset_and_watch_the_job_complete(page, http, receiver, host):
    # Given 4 failures from "shop" and 2 from "erp", and a receiver that accepts from now on
    await seed_failures(
        http,
        receiver,
        "filterretry",
        [Message({"n": n}) for n in range(4)] + [Message({"n": n}, sender="erp") for n in range(2)],
    )
    receiver.script = [Answer(200)]
    delivered_before = len(receiver.requests)
    await page.goto(portal_url(host, "#/integrations/filterretry"))
    await expect(rows(page)).to_have_count(6)

    # When the user filters on sender "shop" within the last hour
    bar = page.get_by_test_id("filter-bar")
    local_hour_ago = await page.evaluate(
        "() => { const d = new Date(Date.now() - 3600e3); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
        " return d.toISOString().slice(0, 19); }"
    )
    await bar.get_by_label("From").fill(local_hour_ago)
    await bar.get_by_label("Sender").fill("shop")
    await bar.get_by_label("Sender").press("Enter")

    # Then the URL carries the filters, the table and the count narrow to shop's 4
    await expect(rows(page)).to_have_count(4)
    await expect(page.get_by_test_id("match-count")).to_have_text("4 failures match these filters.")
    assert re.search(r"sender=shop", page.url) and re.search(r"from=\d{4}-\d\d-\d\dT", page.url)

    # And a reload (or a shared link) shows the same view
    await page.reload()
    await expect(rows(page)).to_have_count(4)
    await expect(page.get_by_test_id("filter-bar").get_by_label("Sender")).to_have_value("shop")
    await screenshots(page, "integration-filtered")

    # When the user selects three rows and retries them, confirming the count
    for index in range(3):
        await rows(page).nth(index).get_by_role("checkbox").check()
    await expect(page.get_by_test_id("selection-summary")).to_have_text("3 failures selected")
    await page.get_by_role("button", name="Retry", exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_role("heading")).to_have_text("Retry 3 failures?")
    await dialog.get_by_role("button", name="Retry 3 failures").click()

    # Then the job card goes live and reaches completed, and the retried rows disappear
    card = page.get_by_test_id("job-card").first
    await expect(card).to_have_attribute("data-state", "completed")
    await expect(card.locator("[data-stat='processed']")).to_have_text("3 of 3")
    await expect(card.locator("[data-stat='succeeded']")).to_have_text("3")
    await expect(card.locator("[data-stat='failed']")).to_have_text("0")
    await expect(card.locator("progress")).to_have_attribute("value", "3")
    await expect(rows(page)).to_have_count(1)
    await expect(page.get_by_test_id("match-count")).to_have_text("1 failure matches these filters.")
    await screenshots(page, "job-completed")
    assert await failure_count(http, "filterretry", sender="shop") == 1
    assert await failure_count(http, "filterretry", sender="erp") == 2
    await until(lambda: _count_since(receiver, delivered_before), 3)


async def test_select_all_deletes_every_matching_failure_not_just_the_loaded_rows(page, http, receiver, host):
    # Given 30 failures from "shop" (more than the table's first page of 25) and 3 from "erp"
    messages = [Message({"n": n}) for n in range(30)] + [Message({"n": n}, sender="erp") for n in range(3)]
    await seed_failures(http, receiver, "selectall", messages)
    await page.goto(portal_url(host, "#/integrations/selectall?sender=shop"))
    await expect(rows(page)).to_have_count(25)
    await expect(page.get_by_role("button", name="Load more")).to_be_visible()

    # When the user turns on "Select all messages" and deletes
    await page.get_by_test_id("select-all").check()

    # Then the selection states the full count, and so does the confirmation
    await expect(page.get_by_test_id("selection-summary")).to_have_text("All 30 failures matching the filters selected")
    await page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_role("heading")).to_have_text("Delete 30 failures?")
    await expect(dialog).to_contain_text("Failures matching sender = shop")
    await dialog.get_by_role("button", name="Delete 30 failures").click()

    # And the job deletes exactly those: shop's 30 go, erp's 3 stay
    card = page.get_by_test_id("job-card").first
    await expect(card).to_have_attribute("data-state", "completed", timeout=30_000)
    await expect(card.locator("[data-stat='processed']")).to_have_text("30 of 30")
    await expect(page.get_by_text("No failures match these filters.")).to_be_visible()
    assert await failure_count(http, "selectall") == 3


async def test_a_job_started_elsewhere_is_surfaced_as_409_and_can_be_cancelled(page, console, http, receiver, host):
    # Given 20 failures, and the user about to confirm "retry all" on them
    console.allow_status(409)
    await seed_failures(http, receiver, "conflict", [Message({"n": n}) for n in range(20)])
    await page.goto(portal_url(host, "#/integrations/conflict"))
    await expect(page.get_by_test_id("match-count")).to_have_text("20 failures in total.")
    await page.get_by_test_id("select-all").check()
    await page.get_by_role("button", name="Retry", exact=True).click()

    # When someone else starts a delete job through the API just before the user confirms
    other = await http.post("/integrations/conflict/jobs", json={"action": "delete", "selection": {"all": True}})
    assert other.status_code == 202, other.text
    await page.get_by_role("dialog").get_by_role("button", name="Retry 20 failures").click()

    # Then the page says why it was not started, shows the other job live, and explains the disabled buttons
    await expect(page.get_by_test_id("job-conflict")).to_contain_text("another job is already active")
    card = page.locator(f"[data-job-id='{other.json()['id']}']")
    await expect(card).to_have_attribute("data-active", "true")
    await expect(page.get_by_role("button", name="Retry", exact=True)).to_be_disabled()
    await expect(page.get_by_role("button", name="Delete", exact=True)).to_be_disabled()
    await expect(page.get_by_test_id("why-disabled")).to_contain_text("A delete job is")
    await expect(page.get_by_test_id("why-disabled")).to_contain_text("Only one job per integration")
    await screenshots(page, "job-conflict")

    # When the user cancels that job from its card
    await card.get_by_role("button", name="Cancel").click()

    # Then it stays listed as cancelled, and the buttons no longer point at a running job
    # (where it stopped, at a page boundary, is the jobs tests' business: it depends on timing here)
    await expect(card).to_have_attribute("data-state", "cancelled")
    await expect(page.get_by_test_id("why-disabled")).not_to_contain_text("Only one job")
    await expect(page.get_by_test_id("job-conflict")).to_have_count(0)


async def test_the_detail_shows_the_content_exactly_as_received_and_binary_as_a_download(page, http, receiver, host):
    # Given a JSON message written by hand (odd spacing, non-ASCII), an XML one and a binary one
    json_text = '{"order":  7,\r\n "customer": "Zoë Ærø ✓", "lines":[{"sku":"A-1","qty":2}]}'
    xml_text = '<?xml version="1.0"?><order id="7"><line sku="A-1">2</line><note>fragile &amp; cold</note></order>'
    binary = bytes(range(256)) * 3
    await seed_failures(
        http,
        receiver,
        "detail",
        [
            Message(raw=json_text.encode(), content_type="application/json", correlation_id="corr-json-7"),
            Message(raw=xml_text.encode(), content_type="application/xml"),
            Message(raw=binary, content_type="application/octet-stream"),
        ],
    )
    items = (await http.get("/integrations/detail/failures")).json()["items"]
    by_type = {item["content_type"]: item["id"] for item in items}
    await page.goto(portal_url(host, "#/integrations/detail"))

    # When the user opens the JSON failure
    opener = page.locator(f"tr[data-failure-id='{by_type['application/json']}'] td.reason button")
    await opener.click()
    dialog = page.get_by_role("dialog")

    # Then the content is indented, and "As received" is byte for byte what was sent
    pretty = await dialog.get_by_test_id("content-pretty").text_content()
    assert pretty == json.dumps(json.loads(json_text), indent=2, ensure_ascii=False)
    await dialog.get_by_role("tab", name="As received").click()
    assert await dialog.get_by_test_id("content-raw").text_content() == json_text
    await expect(dialog.get_by_test_id("correlation-id")).to_have_text("corr-json-7")
    await expect(dialog.get_by_test_id("history-table").locator("tbody tr")).to_have_count(1)
    await expect(dialog.get_by_role("button", name="Copy correlation id")).to_be_visible()
    await dialog.get_by_role("tab", name="Formatted").click()
    await screenshots(page, "detail", full_page=False)

    # When the user closes it with Escape, focus returns to the row
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(opener).to_be_focused()

    # And the XML failure is indented
    await page.locator(f"tr[data-failure-id='{by_type['application/xml']}'] td.reason button").click()
    xml_pretty = await dialog.get_by_test_id("content-pretty").text_content()
    assert xml_pretty is not None and '\n  <line sku="A-1">2</line>' in xml_pretty
    assert "<note>fragile &amp; cold</note>" in xml_pretty
    await dialog.get_by_role("button", name="Close").click()

    # When the user downloads the binary failure's content
    await page.locator(f"tr[data-failure-id='{by_type['application/octet-stream']}'] td.reason button").click()
    await expect(dialog.get_by_test_id("content-hex")).to_contain_text("00000000  00 01 02 03")
    async with page.expect_download() as info:
        await dialog.get_by_role("button", name="Download").click()
    download = await info.value

    # Then the file holds exactly the bytes that were sent
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == binary
    assert download.suggested_filename.endswith(".bin")


async def test_the_settings_form_shows_the_servers_422_next_to_each_field(page, console, http, receiver, host):
    # Given an integration on the linear policy
    console.allow_status(422)
    await seed_failures(http, receiver, "settings", [])
    await page.goto(portal_url(host, "#/integrations/settings/settings"))
    form = page.get_by_test_id("settings-form")
    linear = form.locator("[data-field='retry.linear_count']")
    await expect(linear).to_have_value("3")
    await expect(linear).to_have_attribute("max", "10")

    # When the user picks backoff with a max delay below the min delay, and a script pushes
    # linear_count past the input's own maximum
    await form.get_by_label("Backoff: requeue").check()
    await form.locator("[data-field='retry.backoff.requeue_min_delay_seconds']").fill("90")
    await form.locator("[data-field='retry.backoff.requeue_max_delay_seconds']").fill("30")
    await linear.evaluate("input => { input.removeAttribute('max'); input.value = '12'; }")
    await form.get_by_role("button", name="Save retry policy").click()

    # Then each server message sits next to its field, which is marked invalid
    max_error = form.locator("[data-error-for='retry.backoff.requeue_max_delay_seconds']")
    await expect(max_error).to_contain_text("requeue_min_delay_seconds")
    await expect(form.locator("[data-field='retry.backoff.requeue_max_delay_seconds']")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(form.locator("[data-error-for='retry.linear_count']")).to_contain_text("10")
    await expect(linear).to_be_focused()
    await screenshots(page, "settings-error")

    # When the user corrects both and saves again
    await linear.fill("5")
    await form.locator("[data-field='retry.backoff.requeue_max_delay_seconds']").fill("120")
    await form.get_by_role("button", name="Save retry policy").click()

    # Then it is saved, the marks are gone, and the server has the new policy
    await expect(form.get_by_role("status")).to_have_text("Saved.")
    await expect(form.locator("[aria-invalid='true']")).to_have_count(0)
    retry = (await http.get("/integrations/settings")).json()["retry"]
    assert (retry["mode"], retry["linear_count"]) == ("backoff", 5)
    assert (retry["backoff"]["requeue_min_delay_seconds"], retry["backoff"]["requeue_max_delay_seconds"]) == (90, 120)


async def test_the_filter_bar_and_the_action_buttons_are_reachable_with_tab(page, http, receiver, host):
    # Given an integration with failures, its page open
    await seed_failures(http, receiver, "keyboard", [Message({"n": 1}), Message({"n": 2})])
    await page.goto(portal_url(host, "#/integrations/keyboard"))
    await expect(rows(page)).to_have_count(2)

    # When the user tabs from the top of the page to the first row's checkbox
    seen = []
    for _ in range(60):
        await page.keyboard.press("Tab")
        seen.append(await page.evaluate(FOCUSED))
        if seen[-1].startswith("checkbox:Select the failure"):
            break

    # Then every filter field and the Apply button came by, in order, then the select-all switch
    # (Chromium stops at each part of a date-time input: month, day, year, ...)
    filters = list(dict.fromkeys(name for name in seen if name.startswith("filter:")))
    assert filters == [f"filter:{key}" for key in ("from", "to", "sender", "receiver", "q", "origin", "group")]
    assert seen.index("button:Apply filters") > seen.index("filter:group")
    assert "checkbox:Select all messages" in seen

    # When a row is selected with Space and the user tabs back
    await page.keyboard.press("Space")
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Shift+Tab")

    # Then Delete and Retry are reachable, Enter opens the confirmation and Escape closes it, focus returning
    assert await page.evaluate(FOCUSED) == "button:Retry"
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await expect(page.get_by_role("dialog").get_by_role("button", name="Retry 1 failure")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    assert await page.evaluate(FOCUSED) == "button:Retry"


#: A short name for the focused element: "filter:<key>", "<role or tag>:<accessible-ish name>".
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el) return "none";
  if (el.dataset.filter) return "filter:" + el.dataset.filter;
  const labelled = el.labels && el.labels[0] && el.labels[0].textContent;
  const label = el.getAttribute("aria-label") || labelled || el.textContent;
  const kind = el.type === "checkbox" ? "checkbox" : el.tagName.toLowerCase();
  return kind + ":" + (label || "").trim();
}"""


async def test_the_recovery_panel_counts_a_poisoned_message_and_replays_it(
    page, http, receiver, host, azurite, host_prefix
):
    # Given a message the host gave up on, waiting in the inbound poison queue
    await seed_failures(http, receiver, "recovered", [])
    envelope = {"id": "poisoned-1", "integration": "recovered", "body_text": '{"n": 1}'}
    await put_on_queue(azurite, f"{host_prefix}inbound-poison", json.dumps(envelope))

    # When the user opens the overview
    await page.goto(portal_url(host))
    panel = page.get_by_test_id("recovery-panel")

    # Then the panel counts it among the poisoned, per queue
    await expect(panel.get_by_test_id("poison-count")).to_have_text("1")
    await expect(panel.get_by_test_id("recovery-count")).to_have_text("0")
    await expect(panel.locator("td[data-queue='poison']")).not_to_have_count(0)
    await screenshots(page, "recovery-waiting")

    # When the user asks for a replay
    await panel.get_by_role("button", name="Replay now").click()

    # Then the sweep is announced and shown as the last, manual sweep, and the message went back on its way
    await expect(page.get_by_role("status").filter(has_text="Recovery sweep done: 1 reinserted")).to_be_visible()
    await expect(panel.get_by_test_id("last-sweep")).to_contain_text("manual")
    await expect(panel.get_by_test_id("poison-count")).to_have_text("0")
    await screenshots(page, "recovery")
    await until(lambda: failure_count(http, "recovered"), 1)
    [failure] = (await http.get("/integrations/recovered/failures")).json()["items"]
    assert (failure["message_id"], failure["recovery_count"]) == ("poisoned-1", 1)


async def put_on_queue(azurite: AzuriteProcess, queue: str, text: str) -> None:
    """Write as the host does (base64), straight to storage: how a poisoned message gets there."""
    async with QueueClient.from_connection_string(
        azurite.connection_string, queue, message_encode_policy=TextBase64EncodePolicy()
    ) as client:
        with contextlib.suppress(ResourceExistsError):
            await client.create_queue()
        await client.send_message(text)


async def _count_since(receiver: Receiver, before: int) -> int:
    return len(receiver.requests) - before


# --- sign-in and roles ------------------------------------------------------------------------


async def sign_in_as(page: Page, host: DevhostProcess, user: str, route: str = "#/") -> None:
    """Open the portal signed out, follow its Sign in link to devhost's login page, and pick `user`."""
    await page.goto(portal_url(host, route))
    card = page.get_by_test_id("sign-in")
    await expect(card.get_by_role("heading", level=1)).to_have_text("Sign in")
    await card.get_by_role("link", name="Sign in").click()
    await page.get_by_role("radio", name=re.compile(rf"^{user} ")).check()
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("signed-in-as")).to_have_text(user)


async def test_a_reader_signs_in_sees_everything_and_is_offered_nothing_to_change(anonymous_page, http, receiver, host):
    # Given failures and a config, and a browser that is signed in as nobody
    page = anonymous_page
    await seed_failures(http, receiver, "readonly", [Message({"n": 1}), Message({"n": 2})])

    # When the reader signs in through the page's Sign in link
    await sign_in_as(page, host, "reader")

    # Then the header says who, with the role, and the overview lists the integration, without Replay
    await expect(page.get_by_test_id("signed-in-role")).to_have_text("Reader")
    await expect(page.get_by_test_id("overview-table").locator("tr[data-integration='readonly']")).to_be_visible()
    panel = page.get_by_test_id("recovery-panel")
    await expect(panel.get_by_role("button", name="Refresh")).to_be_visible()
    await expect(panel.get_by_role("button", name="Replay now")).to_have_count(0)

    # When the reader opens the integration
    await page.goto(portal_url(host, "#/integrations/readonly"))

    # Then the failures are listed, but there is no Retry, no Delete, no selection, and the page says why
    await expect(rows(page)).to_have_count(2)
    await expect(page.get_by_role("button", name="Retry", exact=True)).to_have_count(0)
    await expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
    await expect(page.get_by_test_id("failures-table").get_by_role("checkbox")).to_have_count(0)
    await expect(page.get_by_test_id("read-only-note")).to_contain_text("Operator")
    await screenshots(page, "integration-reader")

    # And the settings are shown, but cannot be saved
    await page.goto(portal_url(host, "#/integrations/readonly/settings"))
    form = page.get_by_test_id("settings-form")
    await expect(form.locator("[data-field='retry.linear_count']")).to_be_disabled()
    await expect(form.get_by_role("button", name="Save retry policy")).to_have_count(0)
    await expect(form.get_by_test_id("read-only-note")).to_contain_text("Admin")

    # When the reader signs out
    await page.get_by_role("link", name="Sign out").click()

    # Then the page asks to sign in again
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await expect(page.get_by_test_id("account")).to_have_text("")


async def test_an_operator_signs_in_retries_a_failure_and_finds_it_in_the_audit_trail(
    anonymous_page, http, receiver, host
):
    # Given a failure, a receiver that accepts from now on, and a browser signed in as nobody
    page = anonymous_page
    await seed_failures(http, receiver, "audited", [Message({"n": 1})])
    receiver.script = [Answer(200)]

    # When the operator signs in, lands back on the page, and retries the failure
    await sign_in_as(page, host, "operator")
    await page.goto(portal_url(host, "#/integrations/audited"))
    await expect(rows(page)).to_have_count(1)
    await rows(page).first.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Retry", exact=True).click()
    await page.get_by_role("dialog").get_by_role("button", name="Retry 1 failure").click()

    # Then the job completes, and its card says who started it
    card = page.get_by_test_id("job-card").first
    await expect(card).to_have_attribute("data-state", "completed")
    await expect(card).to_contain_text("by operator")
    # And the settings are the operator's to read, not to change
    await page.goto(portal_url(host, "#/integrations/audited/settings"))
    await expect(page.get_by_test_id("settings-form").get_by_role("button", name="Save retry policy")).to_have_count(0)

    # When the operator opens Audit from the navigation and filters on themself
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Audit")
    filters = page.get_by_test_id("audit-filters")
    await filters.get_by_label("Who").fill("operator")
    await filters.get_by_label("Integration").fill("audited")
    await filters.get_by_role("button", name="Apply filters").click()

    # Then the URL carries the filters, and the trail shows the job's start and end as the operator's, newest first
    trail = page.get_by_test_id("audit-table").locator("tbody tr")
    await expect(trail).to_have_count(2)
    assert "actor=operator" in page.url and "integration=audited" in page.url
    actions = await trail.evaluate_all("rows => rows.map(r => [r.dataset.action, r.dataset.actor])")
    assert actions == [["job.finish", "operator"], ["job.start", "operator"]]
    await expect(trail.first).to_contain_text("state: completed")
    await screenshots(page, "audit")

    # When the filter is narrowed to an action nobody took here
    await filters.get_by_label("Action").select_option("config.delete")
    await filters.get_by_role("button", name="Apply filters").click()

    # Then the page says so
    await expect(page.get_by_test_id("audit-empty")).to_have_text("No entries match these filters.")
