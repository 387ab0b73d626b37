"""Ingest surface: a message in over HTTP → 202 with the message id. Two routes, one behaviour:

- `POST /api/ingest/{integration}`: the senders' route. In Azure it lies under `/api/ingest/*`, which App
  Service Authentication lets through, so a sender needs nothing but its function key.
- `POST /api/integrations/{integration}/messages`: DESIGN.md's route, the same with a function key; in
  Azure it sits behind sign-in like every `/api/integrations/...` route (a signed-in caller with the key).

A Functions function has one route template, so each route is its own function; both run the same
handler and take the same per-function key (DEVHOST_FUNCTION_KEYS locally; in Azure a key of the same
name and value set on both functions: docs/auth.md).
"""

from __future__ import annotations

import azure.functions as func

from blueprints.api import Body, HttpApi, Reply
from blueprints.http import CONFIG_ID, json_response, route_id
from blueprints.schemas import CONFIG_INTEGRATION, INGEST_HEADERS, NO_INTEGRATION, Error, MessageAccepted
from shared.auth import RouteKind
from shared.delivery.ingest import IncomingMessage
from shared.services import get_services
from shared.values import utc_now

bp = func.Blueprint()
api = HttpApi(bp, tag="ingest")

_ANY_CONTENT = Body(
    "any content, empty included; the Content-Type travels with the message", media_type="*/*", required=False
)
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_ANSWERS = {
    202: Reply("accepted: queued (or parked for recovery) for delivery", MessageAccepted),
    400: Reply("the integration in the path or a header is invalid; `details.parameter` names it", Error),
    404: NO_INTEGRATION,
    413: Reply("the body is larger than MAX_MESSAGE_BYTES", Error),
    503: Reply("neither `inbound` nor the recovery queue can take the message", Error, headers=_RETRY_AFTER),
}
_OTHER_HEADERS = "Other `X-` headers travel with the message to the receiver."


async def accept(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    message = IncomingMessage(
        integration=integration,
        body=req.get_body(),
        content_type=req.headers.get("content-type"),
        headers=dict(req.headers),
    )
    accepted = await get_services().ingest.accept(message, now=utc_now())
    envelope = accepted.envelope
    answer = MessageAccepted(id=envelope.id, correlation_id=envelope.correlation_id, parked=accepted.parked)
    return json_response(answer, status=202)


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.
ingest = api.route(
    "ingest", "ingest/{integration}", "POST", kind=RouteKind.INGEST, role=None,
    summary="Send a message through the integration (the senders' route)",
    description="What senders call: a function key and nothing else, also where portal and API routes need "
    f"a sign-in (in Azure this path is let through App Service Authentication). {_OTHER_HEADERS}",
    params=(CONFIG_INTEGRATION, *INGEST_HEADERS), body=_ANY_CONTENT, responses=_ANSWERS,
)(accept)  # fmt: skip

ingest_message = api.route(
    "ingest_message", "integrations/{integration}/messages", "POST", kind=RouteKind.INGEST, role=None,
    summary="Send a message through the integration",
    description="The same as `POST /ingest/{integration}`. Where portal and API routes need a sign-in (Azure), "
    f"this route needs it as well as the function key: senders use `/ingest/{{integration}}`. {_OTHER_HEADERS}",
    params=(CONFIG_INTEGRATION, *INGEST_HEADERS), body=_ANY_CONTENT, responses=_ANSWERS,
)(accept)  # fmt: skip
