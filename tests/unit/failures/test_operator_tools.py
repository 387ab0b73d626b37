"""Issue 19's operator tools on the twins: find a message, search content, suggestions, mute a group,
edit and retry one failure, export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest

from shared.audit.models import Actor, AuditAction
from shared.errors import (
    FailureNotFound,
    HeadersTooLarge,
    NothingToResend,
    PayloadTooLarge,
    RequestValidationError,
    StorageUnavailable,
)
from shared.failures.edit import EditRetryRequest
from shared.failures.export import ExportFormat, FailureExport
from shared.failures.models import FailureFilter, FailureOrigin
from shared.failures.mutes import GroupNotFound, MuteRequest
from shared.failures.queries import ContentSearch, parse_filter
from shared.messages.models import Envelope
from shared.services import Services
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import envelopes_on, seed_failures, services_on

OPERATOR = Actor(name="operator", id="operator", auth="dev")


@pytest.fixture
def services(stores: MemoryStores) -> Services:
    return services_on(stores)


async def add_failure(
    stores: MemoryStores,
    time: FakeTime,
    *,
    body: str = '{"order": 1}',
    content_type: str = "application/json",
    message_id: str | None = None,
    correlation_id: str | None = None,
    sender: str = "Shop-EU",
    reason: str = "HTTP 422 order rejected",
    origin: FailureOrigin = FailureOrigin.ENDPOINT,
    headers: dict[str, str] | None = None,
):
    from shared.failures.records import new_failure

    envelope = Envelope(
        integration="orders",
        sender=sender,
        body_text=body,
        content_type=content_type,
        correlation_id=correlation_id,
        headers=headers or {},
        **({"id": message_id} if message_id else {}),
    )
    await stores.payloads.put(envelope.id, body.encode(), content_type=content_type)
    failure = new_failure(envelope, origin=origin, reason=reason, now=time.now(), body_ref=envelope.id, status_code=422)
    time.advance(1)
    return await stores.failures.add(failure)


# --- find ---------------------------------------------------------------------------------------


async def test_a_message_is_found_by_its_message_id_correlation_id_or_either(services, stores, fake_time):
    # Given three failures, one of them the order in question
    await seed_failures(stores, fake_time, 2)
    wanted = await add_failure(stores, fake_time, message_id="order-4711", correlation_id="corr-99")

    # When it is looked up by message id, by correlation id, and by either through `ref`
    for params in (
        {"message_id": "order-4711"},
        {"correlation_id": "corr-99"},
        {"ref": "corr-99"},
        {"ref": "order-4711"},
    ):
        page = await services.failures.page("orders", parse_filter(params))

        # Then exactly that failure is listed and counted
        assert [f.id for f in page.items] == [wanted.id], params
        assert await services.failures.count("orders", parse_filter(params)) == 1


async def test_sender_matches_by_case_insensitive_prefix(services, stores, fake_time):
    # Given failures from "Shop-EU", "shop-us" and "warehouse"
    for sender in ("Shop-EU", "shop-us", "warehouse"):
        await add_failure(stores, fake_time, sender=sender)

    # When filtered by the sender prefix "SHOP"
    page = await services.failures.page("orders", parse_filter({"sender": "SHOP"}))

    # Then both shops match, whatever their case, and the warehouse does not
    assert sorted(f.sender for f in page.items) == ["Shop-EU", "shop-us"]


async def test_content_search_finds_text_bodies_containing_the_text(services, stores, fake_time):
    # Given a JSON body with the order number, another without, and a binary body
    hit = await add_failure(stores, fake_time, body='{"order": "PO-12345"}')
    await add_failure(stores, fake_time, body='{"order": "PO-99999"}')
    await add_failure(stores, fake_time, body="po-12345", content_type="application/octet-stream")

    # When the bodies are searched for it, in another case
    page = await services.failures.search_content("orders", FailureFilter(), ContentSearch("po-12345"))

    # Then only the text body that holds it is listed, and the scan finished
    assert [f.id for f in page.items] == [hit.id]
    assert page.next_cursor is None and not page.stopped_early


async def test_content_search_stops_at_its_budget_and_goes_on_from_the_cursor(services, stores, fake_time):
    # Given 30 failures, the oldest one holding the text
    oldest = await add_failure(stores, fake_time, body="needle here")
    await seed_failures(stores, fake_time, 29)

    # When searched with a budget of 20 bodies
    first = await services.failures.search_content("orders", FailureFilter(), ContentSearch("needle"), max_rows=20)

    # Then the first request says it stopped early, with a cursor, and the next one finds it
    assert first.items == [] and first.stopped_early and first.next_cursor is not None
    rest = await services.failures.search_content(
        "orders", FailureFilter(), ContentSearch("needle"), cursor=first.next_cursor, max_rows=20
    )
    assert [f.id for f in rest.items] == [oldest.id] and not rest.stopped_early


async def test_facets_suggest_the_configs_and_the_failures_senders(services, stores, fake_time):
    # Given a configured integration (seeded with sender "shop") and failures from two more senders
    await seed_failures(stores, fake_time, 2)
    await add_failure(stores, fake_time, sender="Shop-EU")
    await add_failure(stores, fake_time, sender="warehouse")

    # When the suggestions are read, with the config's sender
    facets = await services.failures.facets("orders", sender="erp")

    # Then each known sender is suggested once, sorted without regard to case
    assert facets.senders == ["erp", "shop", "Shop-EU", "warehouse"]
    assert facets.complete and facets.scanned == 4


# --- mute ---------------------------------------------------------------------------------------


async def test_a_muted_group_leaves_the_overview_count_and_comes_back_when_unmuted(services, stores, fake_time):
    # Given two failures of a known kind and one other
    noisy = await add_failure(stores, fake_time, reason="HTTP 422 order rejected")
    await add_failure(stores, fake_time, reason="HTTP 422 order rejected")
    await add_failure(stores, fake_time, reason="HTTP 503 unavailable")

    # When the known kind is muted
    mute = await services.mutes.mute(
        "orders", noisy.group, MuteRequest(reason="known, fixed upstream"), actor=OPERATOR, now=fake_time.now()
    )

    # Then the overview counts only the other failure, and the groups panel shows the mute
    overview = await services.failures.overview(now=fake_time.now())
    assert [item.count for item in overview] == [1]
    groups = await services.failures.groups("orders", now=fake_time.now())
    assert {g.group: g.muted for g in groups}[noisy.group] == mute
    assert [g.group for g in await services.failures.groups("orders", muted=True, now=fake_time.now())] == [noisy.group]
    # And the failures themselves are still listed
    assert len((await services.failures.page("orders", FailureFilter())).items) == 3

    # When it is unmuted
    assert await services.mutes.unmute("orders", noisy.group, actor=OPERATOR, now=fake_time.now())

    # Then it counts again, and the trail has both changes
    assert [item.count for item in await services.failures.overview(now=fake_time.now())] == [3]
    actions = [entry.action for entry in stores.audit.entries()]
    assert actions[:2] == [AuditAction.FAILURE_GROUP_UNMUTE, AuditAction.FAILURE_GROUP_MUTE]


async def test_a_mute_with_until_lapses_by_itself(services, stores, fake_time):
    # Given a group muted for an hour
    failure = await add_failure(stores, fake_time)
    until = fake_time.now() + timedelta(hours=1)
    await services.mutes.mute(
        "orders", failure.group, MuteRequest(reason="deploy window", until=until), actor=OPERATOR, now=fake_time.now()
    )
    assert [item.count for item in await services.failures.overview(now=fake_time.now())] == [0]

    # When the hour has passed
    fake_time.advance(3601)

    # Then the group counts again
    assert [item.count for item in await services.failures.overview(now=fake_time.now())] == [1]


async def test_a_mute_must_name_a_known_group_and_a_future_until(services, stores, fake_time):
    failure = await add_failure(stores, fake_time)
    with pytest.raises(GroupNotFound):
        await services.mutes.mute("orders", "0" * 16, MuteRequest(reason="x"), actor=OPERATOR, now=fake_time.now())
    past = fake_time.now() - timedelta(minutes=1)
    with pytest.raises(RequestValidationError) as refused:
        await services.mutes.mute(
            "orders", failure.group, MuteRequest(reason="x", until=past), actor=OPERATOR, now=fake_time.now()
        )
    assert refused.value.details["fields"][0]["field"] == "until"


# --- edit and retry ---------------------------------------------------------------------------


async def test_edit_and_retry_sends_the_corrected_copy_then_removes_the_failure(services, stores, fake_time):
    # Given a failure whose body the receiver refused
    failure = await add_failure(
        stores, fake_time, body='{"qty": -1}', message_id="order-7", correlation_id="c-7", headers={"x-shop": "eu"}
    )

    # When the body is corrected and sent again, with a header changed
    done = await services.edit_retry.edit_retry(
        "orders", failure.id,
        EditRetryRequest(body_text='{"qty": 1}', headers={"X-Shop": "eu-west"}),
        actor=OPERATOR, now=fake_time.now(),
    )  # fmt: skip

    # Then the corrected copy waits on inbound under a new id, the same correlation id, one more resend
    [envelope] = envelopes_on(stores)
    assert envelope.id == done.message_id and envelope.id.startswith("order-7.edit.")
    assert envelope.body_text == '{"qty": 1}' and envelope.correlation_id == "c-7"
    assert envelope.headers == {"x-shop": "eu-west"} and envelope.resend_count == 1
    # And the failure and its content are gone
    assert await stores.failures.get("orders", failure.id) is None
    assert await stores.payloads.get(failure.body_ref) is None
    # And the trail keeps sizes, hashes and the diff, and names the header changed (not its value)
    [entry] = [e for e in stores.audit.entries() if e.action is AuditAction.FAILURE_EDIT_RETRY]
    details = entry.details
    assert details["before"]["sha256"] == hashlib.sha256(b'{"qty": -1}').hexdigest()
    assert details["after"] == {
        "size_bytes": 10, "sha256": hashlib.sha256(b'{"qty": 1}').hexdigest(), "content_type": "application/json"
    }  # fmt: skip
    assert '-{"qty": -1}' in details["diff"] and '+{"qty": 1}' in details["diff"]
    assert details["headers_changed"] == ["x-shop"] and entry.target == failure.id


async def test_edit_and_retry_keeps_the_failure_when_the_copy_cannot_be_enqueued(stores, fake_time):
    # Given no recovery flow to park in, and inbound unreachable
    services = services_on(stores)
    services.__dict__["parker"] = None
    failure = await add_failure(stores, fake_time)
    stores.inbound.arm("send", StorageUnavailable("inbound down (injected)"))

    # When an edit is sent
    with pytest.raises(StorageUnavailable):
        await services.edit_retry.edit_retry(
            "orders", failure.id, EditRetryRequest(body_text="{}"), actor=OPERATOR, now=fake_time.now()
        )

    # Then the failure and its content are still there
    assert await stores.failures.get("orders", failure.id) is not None
    assert await stores.payloads.get(failure.body_ref) is not None


@pytest.mark.parametrize(
    ("request_body", "error", "field"),
    [
        ({"body_b64": "not base64!"}, RequestValidationError, "body_b64"),
        ({"body_text": "x" * 300_000}, PayloadTooLarge, "body_text"),
        ({"body_text": "{}", "headers": {"Content-Length": "1"}}, RequestValidationError, "headers.Content-Length"),
        ({"body_text": "{}", "headers": {"X-Functions-Key": "k"}}, RequestValidationError, "headers.X-Functions-Key"),
        ({"body_text": "{}", "headers": {f"X-H{n}": "v" for n in range(40)}}, HeadersTooLarge, "headers"),
    ],
)
async def test_edit_and_retry_validates_like_ingest_and_names_the_field(stores, fake_time, request_body, error, field):
    services = services_on(stores, MAX_MESSAGE_BYTES="262144")
    failure = await add_failure(stores, fake_time)
    with pytest.raises(error) as refused:
        await services.edit_retry.edit_retry(
            "orders", failure.id, EditRetryRequest.model_validate(request_body), actor=OPERATOR, now=fake_time.now()
        )
    details = refused.value.details
    named = details["fields"][0]["field"] if "fields" in details else details["field"]
    assert named == field
    assert await stores.failures.get("orders", failure.id) is not None


async def test_edit_and_retry_refuses_a_pickup_failure_and_an_unknown_one(services, stores, fake_time):
    pickup = await add_failure(stores, fake_time, origin=FailureOrigin.PICKUP)
    with pytest.raises(NothingToResend):
        await services.edit_retry.edit_retry(
            "orders", pickup.id, EditRetryRequest(body_text="{}"), actor=OPERATOR, now=fake_time.now()
        )
    with pytest.raises(FailureNotFound):
        await services.edit_retry.edit_retry(
            "orders", "0000000000000000-000000000000", EditRetryRequest(body_text="{}"), actor=OPERATOR,
            now=fake_time.now(),
        )  # fmt: skip


# --- export -----------------------------------------------------------------------------------


async def test_export_writes_csv_rows_with_formula_cells_defused(services, stores, fake_time):
    # Given a failure whose reason starts like a spreadsheet formula
    failure = await add_failure(stores, fake_time, reason="=HYPERLINK(evil)")

    # When exported as CSV
    export = await FailureExport(services.failures, stores.payloads).export(
        "orders", FailureFilter(), format=ExportFormat.CSV
    )

    # Then the header and the row are there, the formula defused
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [row["id"] for row in rows] == [failure.id]
    assert rows[0]["reason"] == "'=HYPERLINK(evil)" and not export.truncated


async def test_export_ndjson_carries_content_on_request_and_says_when_it_stopped(services, stores, fake_time):
    # Given five failures
    await seed_failures(stores, fake_time, 5)
    exporter = FailureExport(services.failures, stores.payloads)

    # When exported as NDJSON with content, at most three rows per request
    first = await exporter.export(
        "orders", FailureFilter(), format=ExportFormat.NDJSON, include_content=True, max_rows=3
    )

    # Then three lines come with their bodies, and the answer says more are left
    lines = [json.loads(line) for line in first.text.splitlines()]
    assert len(lines) == 3 and lines[0]["content"]["data"] == '{"n": 4}'
    assert first.truncated and first.next_cursor is not None
    # And the rest comes with the cursor
    rest = await exporter.export("orders", FailureFilter(), format=ExportFormat.NDJSON, cursor=first.next_cursor)
    assert rest.rows == 2 and not rest.truncated and "content" not in json.loads(rest.text.splitlines()[0])


async def test_a_large_edit_keeps_the_whole_audit_entry_with_a_cut_diff(services, stores, fake_time):
    # Given a body of 2,000 quote-heavy JSON lines (each escapes to twice its length)
    before = "\n".join(f'{{"line": "{n}", "q": "\\"x\\""}}' for n in range(2000))
    after = "\n".join(f'{{"line": "{n}", "q": "\\"y\\""}}' for n in range(2000))
    failure = await add_failure(stores, fake_time, body=before)

    # When every line is changed
    await services.edit_retry.edit_retry(
        "orders", failure.id, EditRetryRequest(body_text=after), actor=OPERATOR, now=fake_time.now()
    )

    # Then the entry keeps its sizes and hashes, and the diff is cut, with a mark
    [entry] = [e for e in stores.audit.entries() if e.action is AuditAction.FAILURE_EDIT_RETRY]
    assert "truncated" not in entry.details
    assert entry.details["after"]["sha256"] == hashlib.sha256(after.encode()).hexdigest()
    assert entry.details["diff"].endswith("… (diff cut)")
    assert len(json.dumps(entry.details)) <= 8000


async def test_content_search_stops_when_the_reason_scan_beneath_it_does(services, stores, fake_time):
    # Given ten failures none of whose reasons match
    await seed_failures(stores, fake_time, 10)

    # When bodies are searched among failures whose reason holds text none has, with a reason-scan budget of 3
    page = await services.failures.search_content(
        "orders", FailureFilter(q="no such reason"), ContentSearch("n"), scan_budget=3
    )

    # Then the request ends at once, saying it stopped early, with a cursor to go on
    assert page.items == [] and page.stopped_early and page.next_cursor is not None
