"""Building the requests the host would hand a handler, and reading its JSON answer."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from tests.support.auth import ADMIN_HEADERS


def request(
    method: str,
    path: str,
    params: dict[str, str] | None = None,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    **route_params: str,
) -> func.HttpRequest:
    """The request, signed in as devhost's admin (`headers` add to that, or replace it)."""
    return func.HttpRequest(
        method,
        f"http://localhost/api/{path}",
        body=body,
        params=params or {},
        headers={**ADMIN_HEADERS, **(headers or {})},
        route_params=route_params,
    )


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())
