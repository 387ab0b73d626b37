"""Recovery surface: the sweep timer, the retention timer, GET /recovery and POST /recovery/replay."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import handles_errors, json_response, query_params
from shared.services import get_services
from shared.values import utc_now

bp = func.Blueprint()


@bp.function_name("recovery_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%RECOVERY_SCHEDULE%", run_on_startup=False)
async def recovery_sweep(timer: func.TimerRequest) -> None:
    await get_services().sweeper.sweep(trigger="timer")


@bp.function_name("retention_purge")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", run_on_startup=False)
async def retention_purge(timer: func.TimerRequest) -> None:
    await get_services().retention.purge(now=utc_now())


@bp.function_name("recovery_status")
@bp.route(route="recovery", methods=["GET"])
@handles_errors
async def recovery_status(req: func.HttpRequest) -> func.HttpResponse:
    query_params(req)
    return json_response(await get_services().sweeper.status())


@bp.function_name("recovery_replay")
@bp.route(route="recovery/replay", methods=["POST"])
@handles_errors
async def recovery_replay(req: func.HttpRequest) -> func.HttpResponse:
    query_params(req)
    return json_response(await get_services().sweeper.sweep(trigger="manual"))
