"""PayloadStore contract: bodies by reference, byte-identical, deleted one by one or many at once, and
the default content type the failure detail must not mistake for the message's."""

from __future__ import annotations

import os
from datetime import timedelta

from shared.failures.models import FailureOrigin
from shared.failures.queries import FailureQueries
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from shared.messages.ports import Payload, PayloadStore
from shared.values import utc_now
from tests.contract.backends import Backend
from tests.twins.clock import FakeTime


async def test_a_mebibyte_of_binary_round_trips_byte_identical_with_its_content_type(payload_store: PayloadStore):
    data = os.urandom(1024 * 1024)

    ref = await payload_store.put("m-1", data, content_type="application/octet-stream")

    assert ref == "m-1"
    assert await payload_store.get("m-1") == Payload(data, "application/octet-stream")
    assert await payload_store.get("never-written") is None


async def test_put_overwrites_and_a_payload_put_without_a_content_type_reads_back_as_octet_stream(
    payload_store: PayloadStore,
):
    await payload_store.put("m-1", b"first", content_type="text/plain")

    await payload_store.put("m-1", b"second", content_type=None)

    # Blob storage gives every blob a content type; unsaid, it is application/octet-stream.
    assert await payload_store.get("m-1") == Payload(b"second", "application/octet-stream")


async def test_delete_says_whether_it_removed_and_a_missing_payload_counts_as_deleted(payload_store: PayloadStore):
    await payload_store.put("m-1", b"x", content_type=None)

    assert await payload_store.delete("m-1") is True
    assert await payload_store.delete("m-1") is False
    assert await payload_store.get("m-1") is None


async def test_delete_many_answers_per_ref_in_order(payload_store: PayloadStore):
    present = [f"p-{i}" for i in range(0, 30, 3)]
    for ref in present:
        await payload_store.put(ref, b"x", content_type=None)
    refs = [f"p-{i}" for i in range(30)]

    outcomes = await payload_store.delete_many(refs)

    assert outcomes == [None] * len(refs)
    assert [await payload_store.get(ref) for ref in present] == [None] * len(present)


async def test_names_older_than_lists_payloads_written_before_the_cutoff_up_to_the_limit(
    payload_store: PayloadStore, clock: FakeTime
):
    for ref in ("a", "b", "c"):
        await payload_store.put(ref, b"x", content_type=None)

    later = await payload_store.names_older_than(clock.now() + timedelta(minutes=5), limit=10)
    limited = await payload_store.names_older_than(clock.now() + timedelta(minutes=5), limit=2)
    earlier = await payload_store.names_older_than(clock.now() - timedelta(hours=1), limit=10)

    assert sorted(later) == ["a", "b", "c"]
    assert len(limited) == 2 and set(limited) <= {"a", "b", "c"}
    assert earlier == []


async def test_a_text_body_stored_without_a_content_type_shows_as_text_in_its_failure(backend: Backend):
    # Given a failed message that came without a Content-Type, its body stored without one
    payloads = backend.stores.payloads
    await payloads.put("m-1", '{"order": "ä-1"}'.encode(), content_type=None)
    envelope = Envelope(id="m-1", integration="orders", body_ref="m-1")
    failure = new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="HTTP 503", now=utc_now(), body_ref="m-1")
    stored = await backend.stores.failures.add(failure)

    # When its detail is read
    detail = await FailureQueries(backend.stores.failures, payloads).detail("orders", stored.id)

    # Then the store's default type is not taken for the message's: it reads as the text it is
    assert detail.content is not None
    assert (detail.content.encoding, detail.content.data, detail.content.content_type) == (
        "text",
        '{"order": "ä-1"}',
        None,
    )
