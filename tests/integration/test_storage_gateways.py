"""Gateways against Azurite: created on first use, prefixed, ETag-safe, parameterised, paged."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob.aio import ContainerClient

from shared.errors import ConcurrencyConflict, EntityTooLarge
from shared.services import Services
from shared.storage.tables import BatchOperation
from shared.values import utc_now
from tests.support.stores import azure_stores


async def test_queue_is_created_on_first_send_and_round_trips_base64(services: Services):
    # Given a queue that does not exist yet
    azure = azure_stores(services)
    queue = azure.names.inbound

    # When a message is sent and received
    await azure.account.queues.send(queue, '{"hello": "wörld"}')
    received = await azure.account.queues.receive(queue, visibility_timeout_s=5)

    # Then the body is intact and the queue carries the test's prefix
    assert [m.body for m in received] == ['{"hello": "wörld"}'.encode()]
    assert received[0].dequeue_count == 1
    assert queue.startswith(services.settings.prefix)


async def test_delayed_message_is_invisible_until_its_delay(services: Services):
    azure = azure_stores(services)
    queue = azure.names.inbound

    await azure.account.queues.send(queue, "later", visibility_timeout_s=30)

    assert await azure.account.queues.receive(queue) == []
    assert await azure.account.queues.depth(queue) == 1


async def test_deleting_a_message_twice_counts_as_done(services: Services):
    azure = azure_stores(services)
    queue = azure.names.jobs_queue
    await azure.account.queues.send(queue, "x")
    [message] = await azure.account.queues.receive(queue)

    await azure.account.queues.delete(queue, message)
    await azure.account.queues.delete(queue, message)

    assert await azure.account.queues.depth(queue) == 0


async def test_depth_of_a_missing_queue_is_zero(services: Services):
    azure = azure_stores(services)
    assert await azure.account.queues.depth(azure.names.recovery) == 0


async def test_table_is_created_on_first_insert_and_reads_back(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)

    await table.insert({"PartitionKey": "orders", "RowKey": "1", "Reason": "boom", "Attempts": 3})
    row = await table.get("orders", "1")

    assert row is not None
    assert (row["Reason"], row["Attempts"]) == ("boom", 3)
    assert row["_etag"]


async def test_second_insert_of_the_same_row_is_a_conflict(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.jobs_table)
    await table.insert({"PartitionKey": "orders", "RowKey": "lock"})

    with pytest.raises(ConcurrencyConflict):
        await table.insert({"PartitionKey": "orders", "RowKey": "lock"})


async def test_update_with_a_stale_etag_is_a_conflict(services: Services):
    # Given one row loaded twice, both copies holding the same ETag
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failure_summary)
    await table.insert({"PartitionKey": "s", "RowKey": "orders", "Count": 1})
    copy_a = await table.get("s", "orders")
    copy_b = await table.get("s", "orders")
    assert copy_a is not None and copy_b is not None

    # When copy A is written first
    await table.update({**copy_a, "Count": 2}, etag=copy_a["_etag"])

    # Then copy B loses
    with pytest.raises(ConcurrencyConflict):
        await table.update({**copy_b, "Count": 5}, etag=copy_b["_etag"])
    row = await table.get("s", "orders")
    assert row is not None and row["Count"] == 2


async def test_query_is_parameterised_so_quotes_in_values_cannot_widen_it(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)
    await table.insert({"PartitionKey": "a", "RowKey": "1", "Sender": "x"})
    await table.insert({"PartitionKey": "b", "RowKey": "1", "Sender": "x"})

    injected = "x' or PartitionKey ne 'zzz"
    rows = [r async for r in table.query("PartitionKey eq @pk and Sender eq @s", {"pk": "a", "s": injected})]

    assert rows == []


async def test_query_pages_stream_every_row_once(services: Services):
    # Given 250 rows written as transactions of 100
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)
    for start in range(0, 250, 100):
        await table.transact(
            BatchOperation.create({"PartitionKey": "p", "RowKey": f"{i:04d}"})
            for i in range(start, min(start + 100, 250))
        )

    # When paging 40 at a time
    first = await table.query_page("PartitionKey eq @pk", {"pk": "p"}, page_size=40)
    keys = [r["RowKey"] async for r in table.query("PartitionKey eq @pk", {"pk": "p"}, page_size=40)]

    # Then pages are bounded and the stream holds each row exactly once, in key order
    assert len(first.items) == 40 and first.continuation is not None
    assert keys == [f"{i:04d}" for i in range(250)]


async def test_transaction_is_all_or_nothing(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)
    await table.insert({"PartitionKey": "p", "RowKey": "taken"})

    with pytest.raises(ConcurrencyConflict):
        await table.transact(
            [
                BatchOperation.create({"PartitionKey": "p", "RowKey": "new"}),
                BatchOperation.create({"PartitionKey": "p", "RowKey": "taken"}),
            ]
        )

    assert await table.get("p", "new") is None


async def test_entity_over_the_azure_property_limit_is_refused_before_it_reaches_storage(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)

    with pytest.raises(EntityTooLarge):
        await table.insert({"PartitionKey": "p", "RowKey": "big", "Body": "x" * 40_000})

    assert await table.get("p", "big") is None


async def test_query_on_a_missing_table_is_empty(services: Services):
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.error_window)

    page = await table.query_page("PartitionKey eq @pk", {"pk": "x"})

    assert page.items == [] and page.continuation is None


async def test_blob_round_trips_one_mebibyte_byte_identical(services: Services):
    data = os.urandom(1024 * 1024)

    azure = azure_stores(services)
    await azure.account.blobs.upload(azure.names.payloads, "m1", data, content_type="application/octet-stream")
    blob = await azure.account.blobs.download(azure.names.payloads, "m1")

    assert blob is not None
    assert blob.data == data
    assert blob.content_type == "application/octet-stream"


async def test_deleting_a_missing_blob_counts_as_deleted(services: Services):
    azure = azure_stores(services)
    assert await azure.account.blobs.delete(azure.names.payloads, "never-written") is False
    assert await azure.account.blobs.download(azure.names.payloads, "never-written") is None


async def test_delete_many_removes_present_blobs_and_counts_missing_ones_as_gone(services: Services):
    azure = azure_stores(services)
    blobs, container = azure.account.blobs, azure.names.payloads
    present = [f"p{i}" for i in range(0, 300, 10)]
    for name in present:
        await blobs.upload(container, name, b"x")
    names = [f"p{i}" for i in range(300)]  # more than one Blob Batch request (256)

    outcomes = await blobs.delete_many(container, names)

    assert outcomes == [None] * len(names)
    assert await blobs.names_older_than(container, utc_now() + timedelta(minutes=1), limit=1000) == []


async def test_delete_many_in_a_missing_container_counts_every_blob_as_gone(services: Services):
    azure = azure_stores(services)
    assert await azure.account.blobs.delete_many("never-created", ["a", "b"]) == [None, None]


async def test_delete_many_falls_back_to_single_deletes_when_the_service_refuses_a_batch(
    services: Services, monkeypatch: pytest.MonkeyPatch
):
    """Accounts without Blob Batch (hierarchical namespace) answer the whole request 400."""
    azure = azure_stores(services)
    blobs, container = azure.account.blobs, azure.names.payloads
    await blobs.upload(container, "kept-by-batch", b"x")

    refused: list[int] = []

    async def refuse(self: ContainerClient, *names: str, **_: object) -> object:
        refused.append(len(names))
        error = HttpResponseError("Blob Batch is not supported")
        error.status_code = 400
        raise error

    monkeypatch.setattr(ContainerClient, "delete_blobs", refuse)

    outcomes = await blobs.delete_many(container, ["kept-by-batch", "missing"])

    assert refused == [2]
    assert outcomes == [None, None]
    assert await blobs.download(container, "kept-by-batch") is None
