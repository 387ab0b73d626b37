"""FailureStore contract, part 1: storing and reading back failures, and paging through them."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from shared.errors import BadParameter, ConcurrencyConflict
from shared.failures.models import FailureFilter, FailureOrigin
from shared.failures.ports import FailureStore
from shared.failures.records import new_failure
from shared.messages.models import AttemptRecord, Envelope
from shared.tokens import Cursor
from tests.contract.backends import Backend
from tests.contract.failure_data import BASE, all_pages, record

# --- add and get --------------------------------------------------------------------------------


async def test_a_failure_reads_back_with_every_field_and_a_missing_one_is_none(failure_store: FailureStore):
    # Given a failure with every field set
    envelope = Envelope(
        integration="orders",
        sender="webshop",
        receiver="erp",
        correlation_id="c-1",
        content_type="application/json",
        headers={"x-trace": "t-1"},
        received_at=BASE - timedelta(seconds=5),
        delay_actions=1,
        resend_count=2,
        recovery_count=3,
    )
    attempt = AttemptRecord(at=BASE, engine_attempt=1, endpoint_attempt=2, target="https://erp/in", outcome="503")
    failure = new_failure(
        envelope, origin=FailureOrigin.ENGINE, reason="gave up", now=BASE, body_ref="m-1",
        status_code=503, attempts=7, history=[attempt],
    )  # fmt: skip

    # When it is added and read back
    stored = await failure_store.add(failure)
    found = await failure_store.get("orders", failure.id)

    # Then it is the same failure, with a version; another id or integration finds nothing
    assert stored == failure
    assert found is not None and found.failure == failure and found.version
    assert await failure_store.get("orders", "0000000000000000-000000000000") is None
    assert await failure_store.get("billing", failure.id) is None


async def test_has_any_says_whether_an_integration_has_failures(failure_store: FailureStore):
    failure = await record(failure_store, BASE)

    assert await failure_store.has_any("orders") is True
    assert await failure_store.has_any("billing") is False
    assert await failure_store.remove(failure) is True
    assert await failure_store.has_any("orders") is False


async def test_adding_a_failure_that_is_stored_already_is_a_conflict_and_counts_nothing_more(
    failure_store: FailureStore,
):
    failure = await record(failure_store, BASE)

    with pytest.raises(ConcurrencyConflict):
        await failure_store.add(failure)

    assert (await failure_store.summary("orders")).count == 1
    assert await failure_store.count("orders", FailureFilter()) == 1


async def test_a_header_too_long_for_the_store_reads_back_restorable_to_its_whole_value(failure_store: FailureStore):
    # Given a failure whose message carried a 40 KB header (more than a Table property holds)
    long_value = "v" * 40_000
    stored = await record(failure_store, BASE, headers={"x-long": long_value})

    # When it is read back and restored for a resend
    found = await failure_store.get("orders", stored.id)
    assert found is not None
    restored = await failure_store.restore(found.failure)

    # Then whatever the store shows, the resend gets the whole value
    assert restored.headers == {"x-long": long_value}


async def test_ping_answers(failure_store: FailureStore):
    await failure_store.ping()


# --- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "expected_pages"), [(25, 4), (28, 4)])
async def test_pages_of_seven_cover_everything_once_newest_first(failure_store: FailureStore, total, expected_pages):
    # Given `total` failures one second apart
    seeded = [await record(failure_store, BASE + timedelta(seconds=i)) for i in range(total)]

    # When the list is read with limit 7 until the cursor runs out
    pages = await all_pages(failure_store, FailureFilter(), limit=7)

    # Then every page but the last is full and continues, and together they hold each failure once, newest first
    assert len(pages) == expected_pages
    assert all(len(page.items) == 7 and page.next_cursor for page in pages[:-1])
    assert pages[-1].next_cursor is None
    assert [item.id for page in pages for item in page.items] == [f.id for f in reversed(seeded)]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.urlsafe_b64encode(b'{"after": 5}').decode(),
        base64.urlsafe_b64encode(json.dumps({"after": "x' or RowKey ne '"}).encode()).decode(),
        "memory-page:x' or '1' eq '1",
        "c" * 3000,
    ],
    ids=["garbage", "number", "odata", "memory-shaped", "long"],
)
async def test_a_cursor_the_store_did_not_issue_is_a_bad_parameter(failure_store: FailureStore, cursor: str):
    await record(failure_store, BASE)

    with pytest.raises(BadParameter) as caught:
        await failure_store.page("orders", FailureFilter(), limit=5, cursor=Cursor(cursor))

    assert caught.value.parameter == "cursor"


async def test_the_other_backends_cursor_is_refused(backend: Backend):
    # Given two failures and a well-formed cursor of the *other* implementation, after the newer one
    store = backend.stores.failures
    older = await record(store, BASE)
    newer = await record(store, BASE + timedelta(seconds=1))
    if backend.name == "memory":
        foreign = base64.urlsafe_b64encode(json.dumps({"after": newer.id}).encode()).decode().rstrip("=")
    else:
        foreign = f"memory-page:{newer.id}"

    # When it is used, then it is refused rather than read as a position
    with pytest.raises(BadParameter):
        await store.page("orders", FailureFilter(), limit=5, cursor=Cursor(foreign))
    assert [f.id for f in (await store.page("orders", FailureFilter(), limit=5)).items] == [newer.id, older.id]


async def test_paging_goes_on_after_the_failure_a_cursor_ends_at_was_removed(failure_store: FailureStore):
    # Given five failures and a first page of two
    seeded = [await record(failure_store, BASE + timedelta(seconds=i)) for i in range(5)]
    first = await failure_store.page("orders", FailureFilter(), limit=2)
    assert first.next_cursor is not None

    # When the last failure of that page is removed before the next page is read
    assert await failure_store.remove(first.items[-1]) is True
    rest = await failure_store.page("orders", FailureFilter(), limit=5, cursor=first.next_cursor)

    # Then the next page starts right after it
    assert [f.id for f in rest.items] == [f.id for f in reversed(seeded[:3])]
