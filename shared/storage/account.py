"""All gateways of one storage account, built from one connection setting."""

from __future__ import annotations

from shared.settings import Connection
from shared.storage.blobs import BlobGateway
from shared.storage.clients import AccountClients
from shared.storage.queues import QueueGateway
from shared.storage.tables import TableGateway


class StorageAccount:
    def __init__(self, connection: Connection, *, timeout_s: float) -> None:
        self.connection = connection
        self._clients = AccountClients(connection, timeout_s=timeout_s)
        self.timeout_s = timeout_s
        self._queues: QueueGateway | None = None
        self._tables: TableGateway | None = None
        self._blobs: BlobGateway | None = None

    @property
    def queues(self) -> QueueGateway:
        if self._queues is None:
            self._queues = QueueGateway(self._clients.queue_service, timeout_s=self.timeout_s)
        return self._queues

    @property
    def tables(self) -> TableGateway:
        if self._tables is None:
            self._tables = TableGateway(self._clients.table_service, timeout_s=self.timeout_s)
        return self._tables

    @property
    def blobs(self) -> BlobGateway:
        if self._blobs is None:
            self._blobs = BlobGateway(self._clients.blob_service, timeout_s=self.timeout_s)
        return self._blobs

    async def close(self) -> None:
        if self._queues is not None:
            await self._queues.close()
        if self._tables is not None:
            await self._tables.close()
        await self._clients.close()
