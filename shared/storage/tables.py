"""Table-storage gateway over azure.data.tables.aio.

The only module that imports azure.data.tables. Tables are created on first write; every
conditional write takes an ETag; queries are always parameterised (`parameters=`), never
built from user input; listing streams page by page with an opaque continuation token.
Azurite accepts entities that Azure rejects, so the real limits are enforced here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, TransactionOperation, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.errors import ConcurrencyConflict, EntityTooLarge
from shared.storage.faults import error_code, storage_call

T = TypeVar("T")
Entity = dict[str, Any]

#: Azure Table limits (Azurite does not enforce them).
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTY_BYTES = 64 * 1024
MAX_PROPERTIES = 255  # including PartitionKey, RowKey and Timestamp
MAX_BATCH_OPERATIONS = 100
#: A transaction refused for one of these lost a race; the caller re-reads and decides again.
_CONFLICT_CODES = frozenset(
    {"EntityAlreadyExists", "UpdateConditionNotSatisfied", "ConditionNotMet", "ResourceNotFound"}
)


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return 4 + 2 * len(value)
    if isinstance(value, bytes | bytearray):
        return 4 + len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float | datetime):
        return 8
    return 4 + 2 * len(str(value))


def check_entity_limits(entity: Mapping[str, Any]) -> None:
    """Raise EntityTooLarge where Azure would reject the entity (sizes per the documented formula)."""
    if len(entity) + 1 > MAX_PROPERTIES:
        raise EntityTooLarge(f"entity has {len(entity)} properties; Azure allows {MAX_PROPERTIES - 3} besides keys")
    total = 4
    for name, value in entity.items():
        size = _value_size(value)
        if name not in ("PartitionKey", "RowKey") and size - 4 > MAX_PROPERTY_BYTES:
            raise EntityTooLarge(f"property {name!r} is {size - 4} bytes; Azure allows {MAX_PROPERTY_BYTES}")
        total += 8 + 2 * len(name) + size
    if total > MAX_ENTITY_BYTES:
        raise EntityTooLarge(f"entity is about {total} bytes; Azure allows {MAX_ENTITY_BYTES}")


def _clean(entity: Mapping[str, Any]) -> Entity:
    """Drop the `_etag` we attach on reads before writing the row back."""
    return {k: v for k, v in entity.items() if k != "_etag"}


def etag_of(entity: TableEntity | Mapping[str, Any]) -> str | None:
    metadata = getattr(entity, "metadata", None)
    return metadata.get("etag") if metadata else None


@dataclass(frozen=True)
class Page:
    items: list[Entity]
    continuation: dict[str, Any] | None


@dataclass(frozen=True)
class BatchOperation:
    kind: TransactionOperation
    entity: Entity
    etag: str | None = None

    @classmethod
    def create(cls, entity: Entity) -> BatchOperation:
        return cls(TransactionOperation.CREATE, entity)

    @classmethod
    def upsert(cls, entity: Entity) -> BatchOperation:
        return cls(TransactionOperation.UPSERT, entity)

    @classmethod
    def update(cls, entity: Entity, etag: str) -> BatchOperation:
        return cls(TransactionOperation.UPDATE, entity, etag)

    @classmethod
    def delete(cls, partition_key: str, row_key: str, etag: str | None = None) -> BatchOperation:
        return cls(TransactionOperation.DELETE, {"PartitionKey": partition_key, "RowKey": row_key}, etag)

    def as_sdk(self) -> tuple[Any, ...]:
        entity = _clean(self.entity)
        if self.kind in (TransactionOperation.UPDATE, TransactionOperation.DELETE) and self.etag:
            return (self.kind, entity, {"etag": self.etag, "match_condition": MatchConditions.IfNotModified})
        if self.kind in (TransactionOperation.UPDATE, TransactionOperation.UPSERT):
            return (self.kind, entity, {"mode": UpdateMode.REPLACE})
        return (self.kind, entity)


class Table:
    """One table: point reads, conditional writes, parameterised paged queries, transactions."""

    def __init__(self, client: TableClient, *, timeout_s: float) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._exists = False
        self.name = client.table_name

    async def ensure(self) -> None:
        if self._exists:
            return
        async with storage_call(f"create table {self.name}", self._timeout_s):
            with contextlib.suppress(ResourceExistsError):
                await self._client.create_table()
        self._exists = True

    async def _write(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        async with storage_call(f"{what} {self.name}", self._timeout_s):
            try:
                return await call()
            except HttpResponseError as exc:
                # Point writes raise ResourceNotFoundError, transactions TableTransactionError: same code.
                if error_code(exc) != "TableNotFound":
                    raise
            self._exists = False
            await self.ensure()
            return await call()

    async def get(self, partition_key: str, row_key: str) -> Entity | None:
        async with storage_call(f"read {self.name}", self._timeout_s):
            try:
                entity = await self._client.get_entity(partition_key, row_key)
            except ResourceNotFoundError:
                return None
        return _with_etag(entity)

    async def insert(self, entity: Entity) -> str:
        """Create; ConcurrencyConflict when the row exists (the atomic "take the lock" write)."""
        entity = _clean(entity)
        check_entity_limits(entity)

        async def call() -> str:
            try:
                result = await self._client.create_entity(entity)
            except ResourceExistsError as exc:
                raise ConcurrencyConflict(
                    f"{self.name}: row {entity['PartitionKey']}/{entity['RowKey']} exists"
                ) from exc
            return str(result.get("etag", ""))

        return await self._write("insert into", call)

    async def upsert(self, entity: Entity, *, merge: bool = False) -> str:
        entity = _clean(entity)
        check_entity_limits(entity)
        mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE

        async def call() -> str:
            result = await self._client.upsert_entity(entity, mode=mode)
            return str(result.get("etag", ""))

        return await self._write("upsert into", call)

    async def update(self, entity: Entity, *, etag: str, merge: bool = False) -> str:
        """Replace (or merge) only if the row still has `etag`; ConcurrencyConflict otherwise."""
        entity = _clean(entity)
        check_entity_limits(entity)
        mode = UpdateMode.MERGE if merge else UpdateMode.REPLACE
        async with storage_call(f"update {self.name}", self._timeout_s):
            try:
                result = await self._client.update_entity(
                    entity, mode=mode, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceNotFoundError as exc:
                raise ConcurrencyConflict(
                    f"{self.name}: row {entity['PartitionKey']}/{entity['RowKey']} is gone"
                ) from exc
        return str(result.get("etag", ""))

    async def delete(self, partition_key: str, row_key: str, *, etag: str | None = None) -> bool:
        """Delete; a missing row counts as deleted. With an ETag, a changed row raises ConcurrencyConflict.

        Returns False when the service said the row was not there (Azure does; Azurite answers 204
        for an unconditional delete of a missing row, so callers that must know read first).
        """
        kwargs: dict[str, Any] = {}
        if etag:
            kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        async with storage_call(f"delete from {self.name}", self._timeout_s):
            try:
                await self._client.delete_entity(partition_key, row_key, **kwargs)
            except ResourceNotFoundError:
                return False
        return True

    async def query_page(
        self,
        query: str,
        parameters: Mapping[str, Any],
        *,
        page_size: int = 100,
        continuation: Mapping[str, Any] | None = None,
        select: list[str] | None = None,
    ) -> Page:
        """One service page of a parameterised query, and where the next one starts."""
        async with storage_call(f"query {self.name}", self._timeout_s):
            try:
                pager = self._client.query_entities(
                    query, parameters=dict(parameters), results_per_page=page_size, select=select
                ).by_page(continuation_token=dict(continuation) if continuation else None)  # type: ignore[arg-type]  # the SDK types it str; tables use a dict
                async for page in pager:
                    items = [_with_etag(e) async for e in page]
                    token = pager.continuation_token  # type: ignore[attr-defined]
                    return Page(items=items, continuation=dict(token) if token else None)
            except ResourceNotFoundError:
                pass
        return Page(items=[], continuation=None)

    async def query(
        self, query: str, parameters: Mapping[str, Any], *, page_size: int = 100, select: list[str] | None = None
    ) -> AsyncGenerator[Entity, None]:
        """Stream every match, one page in memory at a time."""
        continuation: dict[str, Any] | None = None
        while True:
            page = await self.query_page(
                query, parameters, page_size=page_size, continuation=continuation, select=select
            )
            for item in page.items:
                yield item
            if page.continuation is None:
                return
            continuation = page.continuation

    async def transact(self, operations: Iterable[BatchOperation]) -> None:
        """One atomic transaction (same partition, at most 100 operations)."""
        batch = list(operations)
        if not batch:
            return
        if len(batch) > MAX_BATCH_OPERATIONS:
            raise ValueError(f"a table transaction holds at most {MAX_BATCH_OPERATIONS} operations")
        for operation in batch:
            if operation.kind is not TransactionOperation.DELETE:
                check_entity_limits(_clean(operation.entity))

        async def call() -> None:
            try:
                await self._client.submit_transaction([op.as_sdk() for op in batch])
            except TableTransactionError as exc:
                if error_code(exc) in _CONFLICT_CODES:
                    raise ConcurrencyConflict(f"{self.name}: transaction refused ({error_code(exc)})") from exc
                raise

        await self._write("transaction on", call)

    async def drop(self) -> None:
        async with storage_call(f"delete table {self.name}", self._timeout_s):
            await self._client.delete_table()
        self._exists = False


def _with_etag(entity: TableEntity) -> Entity:
    row: Entity = dict(entity)
    row["_etag"] = etag_of(entity)
    return row


class TableGateway:
    def __init__(self, service: TableServiceClient, *, timeout_s: float) -> None:
        self._service = service
        self._timeout_s = timeout_s
        self._tables: dict[str, Table] = {}

    def table(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            table = Table(self._service.get_table_client(name), timeout_s=self._timeout_s)
            self._tables[name] = table
        return table

    async def ping(self) -> None:
        """A cheap round trip that proves the table service answers."""
        async with storage_call("list tables", self._timeout_s):
            async for _ in self._service.query_tables("TableName eq @n", parameters={"n": "_ping"}):
                break

    async def close(self) -> None:
        for table in self._tables.values():
            await table._client.close()
        self._tables.clear()
