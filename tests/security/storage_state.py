"""What a prefix's storage holds, to prove that a refused request wrote nothing.

Every table, queue and blob container whose name starts with the prefix, with each row's
ETag, each queue's message count and each blob's ETag: any create, insert, update, upsert,
enqueue or upload under the prefix changes the state.
"""

from __future__ import annotations

from typing import Any

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

State = dict[str, Any]


def storage_state(connection_string: str, prefix: str) -> State:
    state: State = {}
    with TableServiceClient.from_connection_string(connection_string) as tables:
        for table in tables.list_tables():
            if table.name.lower().startswith(prefix.lower()):
                client = tables.get_table_client(table.name)
                rows = client.list_entities(select=["PartitionKey", "RowKey"])
                state[f"table:{table.name}"] = sorted(
                    (row["PartitionKey"], row["RowKey"], row.metadata.get("etag")) for row in rows
                )
    with QueueServiceClient.from_connection_string(connection_string) as queues:
        for queue in queues.list_queues(name_starts_with=prefix):
            properties = queues.get_queue_client(queue.name).get_queue_properties()
            state[f"queue:{queue.name}"] = properties.approximate_message_count
    with BlobServiceClient.from_connection_string(connection_string) as blobs:
        for container in blobs.list_containers(name_starts_with=prefix):
            listing = blobs.get_container_client(container.name).list_blobs()
            state[f"container:{container.name}"] = sorted((blob.name, blob.etag) for blob in listing)
    return state
