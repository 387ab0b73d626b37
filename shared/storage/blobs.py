"""Blob gateway over azure.storage.blob.aio: message bodies in the `payloads` container (claim check)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from shared.concurrency import each
from shared.errors import StorageError, StorageUnavailable
from shared.storage.faults import error_code, is_unavailable_status, storage_call

#: The most sub-requests one Blob Batch request may carry (a service limit).
BATCH_MAX = 256
#: Single deletes at once when a Blob Batch is refused.
FALLBACK_CONCURRENCY = 16


@dataclass(frozen=True)
class Blob:
    data: bytes
    content_type: str | None
    #: The version read (its ETag): a conditional delete removes exactly this version.
    etag: str = ""


@dataclass(frozen=True)
class ListedBlob:
    name: str
    etag: str
    size: int


class BlobGateway:
    def __init__(self, service: BlobServiceClient, *, timeout_s: float) -> None:
        self._service = service
        self._timeout_s = timeout_s
        self._created: set[str] = set()

    async def ensure(self, container: str) -> None:
        if container in self._created:
            return
        async with storage_call(f"create container {container}", self._timeout_s):
            with contextlib.suppress(ResourceExistsError):
                await self._service.create_container(container)
        self._created.add(container)

    async def upload(self, container: str, name: str, data: bytes, *, content_type: str | None = None) -> None:
        """Write (or overwrite: the name is the message id, so a retry writes the same bytes)."""
        client = self._service.get_blob_client(container, name)
        settings = ContentSettings(content_type=content_type) if content_type else None
        async with storage_call(f"upload {container}/{name}", self._timeout_s * 3):
            try:
                await client.upload_blob(data, overwrite=True, content_settings=settings)
                return
            except ResourceNotFoundError as exc:
                if error_code(exc) != "ContainerNotFound":
                    raise
            self._created.discard(container)
            await self.ensure(container)
            await client.upload_blob(data, overwrite=True, content_settings=settings)

    async def download(self, container: str, name: str) -> Blob | None:
        client = self._service.get_blob_client(container, name)
        async with storage_call(f"download {container}/{name}", self._timeout_s * 3):
            try:
                stream = await client.download_blob()
            except ResourceNotFoundError:
                return None
            data = await stream.readall()
        properties = stream.properties
        return Blob(data=data, content_type=properties.content_settings.content_type, etag=str(properties.etag or ""))

    async def list_blobs(
        self, container: str, *, prefix: str, limit: int, skip_prefix: str | None = None
    ) -> list[ListedBlob]:
        """Up to `limit` blobs whose names start with `prefix` (and not with `skip_prefix`), in name order.

        A missing container raises the SDK's ResourceNotFoundError: whoever reads someone else's
        container must say so, not create it.
        """
        listed: list[ListedBlob] = []
        client = self._service.get_container_client(container)
        async with storage_call(f"list {container}", self._timeout_s * 3):
            async for blob in client.list_blobs(name_starts_with=prefix or None, results_per_page=min(limit, 5000)):
                name = str(blob.name)
                if skip_prefix and name.startswith(skip_prefix):
                    continue
                listed.append(ListedBlob(name=name, etag=str(blob.etag or ""), size=int(blob.size or 0)))
                if len(listed) >= limit:
                    break
        return listed

    async def delete_version(self, container: str, name: str, etag: str) -> bool:
        """Delete the blob only while it is still the version `etag`; False when it is gone already.

        ConcurrencyConflict when it was rewritten since: the newer content is not ours to remove.
        """
        client = self._service.get_blob_client(container, name)
        async with storage_call(f"delete {container}/{name}", self._timeout_s):
            try:
                await client.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
            except ResourceNotFoundError:
                return False
        return True

    async def delete(self, container: str, name: str) -> bool:
        """True if this call removed the blob; a missing blob counts as deleted."""
        async with storage_call(f"delete {container}/{name}", self._timeout_s):
            try:
                await self._service.get_blob_client(container, name).delete_blob()
            except ResourceNotFoundError:
                return False
        return True

    async def delete_many(self, container: str, names: Sequence[str]) -> list[StorageError | None]:
        """Delete blobs in Blob Batch requests of up to 256; per name, in order, None when the blob
        is gone (deleted now or missing already) or the error that kept it.

        A request the service refuses whole with 400 (an account without Blob Batch, such as one
        with a hierarchical namespace) is done again one delete per blob. A batch that cannot
        reach the service raises StorageUnavailable, as a single delete would.
        """
        outcomes: list[StorageError | None] = []
        for start in range(0, len(names), BATCH_MAX):
            outcomes.extend(await self._delete_batch(container, names[start : start + BATCH_MAX]))
        return outcomes

    async def _delete_batch(self, container: str, names: Sequence[str]) -> list[StorageError | None]:
        async with storage_call(f"batch delete of {len(names)} in {container}", self._timeout_s * 3):
            try:
                responses = await self._service.get_container_client(container).delete_blobs(
                    *names, raise_on_any_failure=False
                )
                statuses = [response.status_code async for response in responses]
            except HttpResponseError as exc:
                if exc.status_code != 400:
                    raise
                statuses = None
        if statuses is None:
            return await each(
                names, lambda name: self.delete(container, name), limit=FALLBACK_CONCURRENCY, errors=StorageError
            )
        pairs = zip(names, statuses, strict=True)
        return [batch_delete_outcome(f"{container}/{name}", status) for name, status in pairs]

    async def names_older_than(self, container: str, cutoff: datetime, *, limit: int) -> list[str]:
        """Up to `limit` blob names last modified before `cutoff` (listing streams page by page)."""
        names: list[str] = []
        async with storage_call(f"list {container}", self._timeout_s * 6):
            try:
                async for blob in self._service.get_container_client(container).list_blobs():
                    if blob.last_modified is not None and blob.last_modified < cutoff:
                        names.append(str(blob.name))
                        if len(names) >= limit:
                            break
            except ResourceNotFoundError:
                return []
        return names

    async def ping(self) -> None:
        async with storage_call("blob service properties", self._timeout_s):
            await self._service.get_account_information()


def batch_delete_outcome(what: str, status: int) -> StorageError | None:
    """One Blob Batch sub-response: 202 deleted, 404 already gone; anything else kept the blob."""
    if status in (200, 202, 404):
        return None
    if is_unavailable_status(status):
        return StorageUnavailable(f"delete {what}: HTTP {status}")
    return StorageError(f"delete {what}: HTTP {status}")
