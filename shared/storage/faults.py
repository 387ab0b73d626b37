"""Translate Azure SDK and network failures into Rebound's storage errors, in one place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import ConcurrencyConflict, StorageUnavailable


def is_unavailable(exc: BaseException) -> bool:
    """True for failures that mean "the store is not there right now" rather than "you asked wrongly"."""
    if isinstance(
        exc, TimeoutError | asyncio.TimeoutError | ConnectionError | ServiceRequestError | ServiceResponseError
    ):
        return True
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or is_unavailable_status(exc.status_code)
    return isinstance(exc, AzureError) and not isinstance(exc, HttpResponseError)


def is_unavailable_status(status: int) -> bool:
    """An HTTP answer that means the store could not do it now (server error or its timeout)."""
    return status >= 500 or status == 408


@asynccontextmanager
async def storage_call(what: str, timeout_s: float) -> AsyncIterator[None]:
    """Bound one storage operation in time and map its failure to a Rebound error.

    The SDK's own retries run inside the bound; past it the store counts as unavailable,
    which is what lets the catastrophic layer park a message instead of hanging.
    """
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except ResourceModifiedError as exc:
        raise ConcurrencyConflict(f"{what}: the entity changed since it was read") from exc
    except TimeoutError as exc:
        raise StorageUnavailable(f"{what}: no answer within {timeout_s:g} s") from exc
    except Exception as exc:
        if is_unavailable(exc):
            raise StorageUnavailable(f"{what}: {type(exc).__name__}") from exc
        raise


def error_code(exc: HttpResponseError) -> str | None:
    """The service's error code (TableNotFound, QueueNotFound, ...), wherever this SDK put it."""
    code = getattr(exc, "error_code", None)
    if code:
        return str(code.value if hasattr(code, "value") else code)
    response = getattr(exc, "response", None)
    header = response.headers.get("x-ms-error-code") if response is not None else None
    if header:
        return str(header)
    for known in ("TableNotFound", "QueueNotFound", "ContainerNotFound", "BlobNotFound"):
        if known in str(exc):
            return known
    return None
