"""Control surface: pause and resume an integration, its control status, the drain queue and the control timer."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import Body, HttpApi, Reply
from blueprints.http import CONFIG_ID, json_response, query_params, read_json, route_id
from blueprints.schemas import BAD_BODY, BAD_PARAMETER, CONFIG_INTEGRATION, INVALID, NO_INTEGRATION, NOT_JSON
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.control.models import ControlStatus, PauseRequest
from shared.services import get_services
from shared.validation import parse_model

bp = func.Blueprint()
api = HttpApi(bp, tag="control")


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "pause_integration", "integrations/{integration}/pause", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Pause: hold every message of the integration (not attempted, not counted) until resumed",
    description="Answers once every instance honours the pause (CONTROL_REFRESH_S). The body is optional.",
    params=(CONFIG_INTEGRATION,),
    body=Body("why (shown in the portal and the config's `paused`)", PauseRequest, required=False),
    responses={
        200: Reply("paused", ControlStatus),
        400: BAD_BODY,
        404: NO_INTEGRATION,
        415: NOT_JSON,
        422: INVALID,
    },
)  # fmt: skip
async def pause_integration(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    request = parse_model(PauseRequest, read_json(req)) if req.get_body() else PauseRequest()
    status = await get_services().control.pause(integration, request, actor=Actor.of(caller))
    return json_response(status)


@api.route(
    "resume_integration", "integrations/{integration}/resume", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Resume: deliver the held messages in arrival order, then new ones (closes an open circuit breaker)",
    params=(CONFIG_INTEGRATION,),
    responses={200: Reply("resumed; the hold drains", ControlStatus), 400: BAD_PARAMETER, 404: NO_INTEGRATION},
)  # fmt: skip
async def resume_integration(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().control.resume(integration, actor=Actor.of(caller)))


@api.route(
    "get_control", "integrations/{integration}/control", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Paused or not, messages held, the circuit breaker, the rate limit",
    params=(CONFIG_INTEGRATION,),
    responses={200: Reply("the status", ControlStatus), 400: BAD_PARAMETER, 404: NO_INTEGRATION},
)  # fmt: skip
async def get_control(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().control.status(integration))


@bp.function_name("drain_held")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%drain", connection="AzureWebJobsStorage")
async def drain_held(msg: func.QueueMessage) -> None:
    await get_services().drainer.run(msg.get_body())


@bp.function_name("control_tick")
@bp.timer_trigger(arg_name="timer", schedule="%CONTROL_SCHEDULE%", run_on_startup=False)
async def control_tick(timer: func.TimerRequest) -> None:
    await get_services().control.tick()
