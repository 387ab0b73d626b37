"""Responses devhost produces itself (not the app's): JSON errors shaped like the app's own."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)
