"""A message's timeline (issue 17): what happened to it from its first failed attempt on."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Param, Reply
from blueprints.http import FAILURES_INTEGRATION, IdShape, int_param, json_response, query_params, route_id
from blueprints.schemas import BAD_PARAMETER, FAILURE_INTEGRATION, Error
from shared.auth import Principal, Role, RouteKind
from shared.services import get_services
from shared.timeline.models import DEFAULT_LIMIT, MAX_LIMIT, MESSAGE_ID_PATTERN, Timeline

bp = func.Blueprint()
api = HttpApi(bp, tag="failures")

#: A message id as the engine takes it (a failure's `message_id`).
MESSAGE_ID = IdShape(MESSAGE_ID_PATTERN, "must be a message id: 1-128 letters, digits, '.', '_', ':' or '-'")
MESSAGE_ID_PARAM = Param(
    "message_id",
    "path",
    "the message's id (a failure's `message_id`, the ingest answer's `id`)",
    {"type": "string", "pattern": MESSAGE_ID_PATTERN},
    required=True,
)
TIMELINE_PAGE = (
    Param(
        "limit",
        "query",
        "events per page",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    Param(
        "cursor",
        "query",
        "the `next_cursor` of the previous page (opaque; any other value is a 400)",
        {"type": "string", "minLength": 1, "maxLength": 2048},
    ),
)

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "message_timeline", "integrations/{integration}/messages/{message_id}/timeline", "GET",
    kind=RouteKind.API, role=Role.READER,
    summary="What happened to a message from its first failed attempt on",
    description=(
        "Events oldest first: `received`, `attempt`, `retry_scheduled`, `delayed`, `failed`, `resent`, `parked`, "
        "`recovered`, `delivered`, each with the instance that recorded it and its details. A message delivered "
        "at its first attempt has no timeline (it costs no write): 404 `no_timeline`."
    ),
    params=(FAILURE_INTEGRATION, MESSAGE_ID_PARAM, *TIMELINE_PAGE),
    responses={
        200: Reply("one page of events, oldest first", Timeline),
        400: BAD_PARAMETER,
        404: Reply("`no_timeline`: delivered at the first try, past the retention, or unknown", Error),
    },
)  # fmt: skip
async def message_timeline(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    message_id = route_id(req, "message_id", MESSAGE_ID)
    params = query_params(req, ("limit", "cursor"))
    timeline = await get_services().timelines.page(
        integration, message_id, limit=int_param(params, "limit", DEFAULT_LIMIT), cursor=params.get("cursor")
    )
    return json_response(timeline)
