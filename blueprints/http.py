"""Shared HTTP plumbing for the blueprints: JSON in and out, and the one error → status mapping."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from shared.errors import BadParameter, InputError, PayloadTooLarge, ReboundError, UnsupportedMediaType
from shared.ids import RECORD_ID_PATTERN
from shared.logs import log_event
from shared.sensitive import safe_url
from shared.values import ENVELOPE_INTEGRATION_PATTERN, INTEGRATION_ID_PATTERN

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


#: The largest JSON body the API reads. A config must fit one Table property (64 KiB), and no other
#: JSON body comes near it (a job's 1,000 ids are ~34 KiB); larger bodies are refused unread.
MAX_JSON_BODY_BYTES = 64 * 1024


def read_json(req: func.HttpRequest, *, max_bytes: int = MAX_JSON_BODY_BYTES) -> Any:
    """The body as JSON, or a 4xx naming `body`: too large (413), not JSON (415/400), nested too deeply."""
    _require_json_media_type(req)
    body = req.get_body()
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"the request body is {len(body)} bytes; the limit is {max_bytes}",
            details={"field": "body", "limit_bytes": max_bytes, "size_bytes": len(body)},
        )
    if not body:
        raise InputError("the request body is empty; send a JSON object", details={"field": "body"})
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError("the request body nests too deeply", details={"field": "body"}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the request body is not valid JSON: {exc}", details={"field": "body"}) from exc


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity; JSON (RFC 8259) has no such numbers.
    raise ValueError(f"{name} is not a JSON number")


def _require_json_media_type(req: func.HttpRequest) -> None:
    """A declared Content-Type must be JSON; none at all is taken as JSON (curl without -H, simple clients)."""
    declared = (req.headers.get("content-type") or "").strip()
    if not declared:
        return
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type != JSON and not (media_type.startswith("application/") and media_type.endswith("+json")):
        raise UnsupportedMediaType(
            f"the body must be {JSON}, not {media_type[:100]!r}",
            details={"parameter": "Content-Type", "expected": JSON},
        )


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


# --- route and query parameters ---------------------------------------------------------------


@dataclass(frozen=True)
class IdShape:
    """What a route id must look like: the model's pattern and the rule as a caller reads it."""

    pattern: str
    rule: str


#: An integration config's id (and ingest's integration).
CONFIG_ID = IdShape(
    INTEGRATION_ID_PATTERN, "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
#: An integration whose failures and jobs are read: a config id, or `_unknown` (messages of no known integration).
FAILURES_INTEGRATION = IdShape(
    ENVELOPE_INTEGRATION_PATTERN,
    "must be '_unknown' or 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
)
#: A failure group's fingerprint (failure-groups' `group`).
FAILURE_GROUP = IdShape(
    r"^[A-Za-z0-9_-]{1,64}$", "must be a failure group's fingerprint: 1-64 letters, digits, '_' or '-'"
)
#: A failure's or a job's id, as the API returned it.
RECORD_ID = IdShape(RECORD_ID_PATTERN, "must be an id this API returned: 16 digits, '-', 12 lowercase hex digits")


def route_id(req: func.HttpRequest, name: str, shape: IdShape) -> str:
    """A route id checked before anything reaches storage, where `/`, `#`, `?`, control characters or an
    over-long key are refused by the service with a 400 or (Azurite) a 500 that would read as an outage.

    A malformed id is a 400 naming the parameter (not a 404): the caller learns the id cannot be right,
    not merely that nothing is stored under it. The value is not echoed (it may hold control characters).
    """
    value = req.route_params.get(name, "")
    if re.fullmatch(shape.pattern, value) is None:
        raise BadParameter(name, shape.rule)
    return value


#: The function key may always come as a query parameter (`?code=`), besides the header.
_KEY_PARAMETER = "code"


def query_params(req: func.HttpRequest, allowed: Collection[str] = ()) -> dict[str, str]:
    """The query parameters a route takes; any other is a 400 naming it (a typo never widens a selection)."""
    unknown = sorted(key for key in req.params if key not in allowed and key != _KEY_PARAMETER)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise BadParameter(unknown[0][:100], f"is not a query parameter of this route (it takes: {takes})")
    return {key: value for key, value in req.params.items() if key in allowed}


_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")


def int_param(params: dict[str, str], name: str, default: int) -> int:
    """An absent parameter takes its default; an empty or non-integer one is a 400 (not the default)."""
    raw = params.get(name)
    if raw is None:
        return default
    # ASCII digits only: int() would also take " 5", "٥" and "1_000".
    if _INTEGER.fullmatch(raw) is None:
        raise BadParameter(name, "must be an integer")
    return int(raw)
