"""Pickup surface: the timer that runs due sources, a source's status, and "pick up now"."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import CONFIG_ID, handles_errors, json_response, query_params, route_id
from shared.services import get_services

bp = func.Blueprint()


@bp.function_name("pickup_sources")
@bp.timer_trigger(arg_name="timer", schedule="%PICKUP_SCHEDULE%", run_on_startup=False)
async def pickup_sources(timer: func.TimerRequest) -> None:
    await get_services().pickup_runner.run_due()


@bp.function_name("get_pickup")
@bp.route(route="integrations/{integration}/pickup", methods=["GET"])
@handles_errors
async def get_pickup(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().pickup.status(integration))


@bp.function_name("run_pickup")
@bp.route(route="integrations/{integration}/pickup/run", methods=["POST"])
@handles_errors
async def run_pickup(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().pickup.run_now(integration), status=202)
