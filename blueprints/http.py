"""Shared HTTP plumbing for the blueprints: JSON in and out, and the one error → status mapping."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from shared.errors import BadParameter, InputError, ReboundError
from shared.logs import log_event
from shared.sensitive import safe_url

logger = logging.getLogger("rebound.http")

JSON = "application/json"
Handler = Callable[[func.HttpRequest], Awaitable[func.HttpResponse]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    if isinstance(data, BaseModel):
        body = data.model_dump_json(by_alias=True)
    else:
        body = json.dumps(data, default=_json_default, separators=(",", ":"))
    return func.HttpResponse(body, status_code=status, mimetype=JSON, charset="utf-8", headers=headers)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"cannot serialise {type(value).__name__}")


#: Seconds a client should wait after a 503 (our storage is down; recovery needs a moment).
RETRY_AFTER_S = 30


def error_response(error: ReboundError, headers: dict[str, str] | None = None) -> func.HttpResponse:
    if error.http_status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S), **(headers or {})}
    return json_response(error.to_body(), status=error.http_status, headers=headers)


def read_json(req: func.HttpRequest) -> Any:
    body = req.get_body()
    if not body:
        raise InputError("the request body is empty; send a JSON object", details={"field": "body"})
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}", details={"field": "body"}) from exc


def handles_errors(handler: Handler) -> Handler:
    """Map Rebound errors to their status; anything else is a logged 500 with no internals leaked."""

    @functools.wraps(handler)
    async def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return await handler(req)
        except ReboundError as exc:
            if exc.http_status >= 500:
                log_event(logger, "request.failed", level=logging.WARNING, url=safe_url(req.url), code=exc.code)
            return error_response(exc)
        except Exception as exc:
            log_event(
                logger, "request.crashed", level=logging.ERROR, exc_info=True, url=safe_url(req.url),
                error=type(exc).__name__,
            )  # fmt: skip
            return error_response(ReboundError("internal error; see the function logs"))

    return wrapper


def query_params(req: func.HttpRequest) -> dict[str, str]:
    return {key: value for key, value in req.params.items() if key != "code"}


def int_param(req: func.HttpRequest, name: str, default: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadParameter(name, "must be an integer") from None
