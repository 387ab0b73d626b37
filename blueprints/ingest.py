"""Ingest surface: POST /api/integrations/{integration}/messages → 202 with the message id."""

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


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.
@api.route(
    "ingest_message", "integrations/{integration}/messages", "POST", kind=RouteKind.INGEST, role=None,
    summary="Send a message through the integration",
    description="Other `X-` headers travel with the message to the receiver.",
    params=(CONFIG_INTEGRATION, *INGEST_HEADERS),
    body=_ANY_CONTENT,
    responses={
        202: Reply("accepted: queued (or parked for recovery) for delivery", MessageAccepted),
        400: Reply("the integration in the path or a header is invalid; `details.parameter` names it", Error),
        404: NO_INTEGRATION,
        413: Reply("the body is larger than MAX_MESSAGE_BYTES", Error),
        503: Reply("neither `inbound` nor the recovery queue can take the message", Error, headers=_RETRY_AFTER),
    },
)  # fmt: skip
async def ingest_message(req: func.HttpRequest) -> func.HttpResponse:
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
