"""Ingest surface: POST /api/integrations/{integration}/messages → 202 with the message id."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import CONFIG_ID, handles_errors, json_response, route_id
from shared.delivery.ingest import IncomingMessage
from shared.services import get_services
from shared.values import utc_now

bp = func.Blueprint()


@bp.function_name("ingest_message")
@bp.route(route="integrations/{integration}/messages", methods=["POST"])
@handles_errors
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
    body = {"id": envelope.id, "correlation_id": envelope.correlation_id, "parked": accepted.parked}
    return json_response(body, status=202)
