"""Pickup surface: the timer that runs due sources, a source's status, and "pick up now"."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Reply
from blueprints.http import CONFIG_ID, json_response, query_params, route_id
from blueprints.schemas import BAD_PARAMETER, CONFIG_INTEGRATION, Error
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.pickup.models import PickupStatus
from shared.services import get_services

bp = func.Blueprint()
api = HttpApi(bp, tag="pickup")

NO_SOURCE = Reply("the integration does not exist, or has no `source` (`details.integration` names it)", Error)


@bp.function_name("pickup_sources")
@bp.timer_trigger(arg_name="timer", schedule="%PICKUP_SCHEDULE%", run_on_startup=False)
async def pickup_sources(timer: func.TimerRequest) -> None:
    await get_services().pickup_runner.run_due()


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "get_pickup", "integrations/{integration}/pickup", "GET", kind=RouteKind.API, role=Role.READER,
    summary="The pickup source's status: its last run, failed runs in a row, items picked, the next run",
    params=(CONFIG_INTEGRATION,),
    responses={200: Reply("the status", PickupStatus), 400: BAD_PARAMETER, 404: NO_SOURCE},
)  # fmt: skip
async def get_pickup(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().pickup.status(integration))


@api.route(
    "run_pickup", "integrations/{integration}/pickup/run", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Pick up now: run the source at once, without waiting for its interval",
    description="When another run holds the source, this one runs once that has ended (the next timer tick).",
    params=(CONFIG_INTEGRATION,),
    responses={
        202: Reply("the run has started (GET the status for its outcome)", PickupStatus),
        400: BAD_PARAMETER,
        404: NO_SOURCE,
        409: Reply("the source is disabled (`enabled: false`)", Error),
    },
)  # fmt: skip
async def run_pickup(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().pickup.run_now(integration, actor=Actor.of(caller)), status=202)
