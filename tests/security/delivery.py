"""Driving devhost over HTTP for the egress tests: configure, ingest, read the failures back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def put_config(
    http: httpx.AsyncClient, integration: str, endpoint: dict[str, Any], **config: Any
) -> httpx.Response:
    return await http.put(f"/integrations/{integration}", json={"name": integration, "endpoint": endpoint, **config})


def field_errors(response: httpx.Response) -> dict[str, str]:
    """`details.fields` of a 422 as {field: message}."""
    assert response.status_code == 422, response.text
    return {f["field"]: f["message"] for f in response.json()["error"]["details"]["fields"]}


async def ingest(http: httpx.AsyncClient, integration: str, body: bytes = b'{"order": 1}') -> str:
    response = await http.post(f"/integrations/{integration}/messages", content=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def wait_for_failures(
    http: httpx.AsyncClient, integration: str, count: int = 1, timeout_s: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        response = await http.get(f"/integrations/{integration}/failures")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        if len(items) >= count:
            return items
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(items)} failures for {integration} after {timeout_s} s, expected {count}")
        await asyncio.sleep(0.2)
