"""Recovery surface: the sweep timer, the retention timer (failures and the audit trail), GET /recovery and
POST /recovery/replay."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Reply
from blueprints.http import json_response, query_params
from blueprints.schemas import BAD_PARAMETER
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.recovery.models import RecoveryStatus, SweepResult
from shared.services import get_services
from shared.values import utc_now

bp = func.Blueprint()
api = HttpApi(bp, tag="recovery")


@bp.function_name("recovery_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%RECOVERY_SCHEDULE%", run_on_startup=False)
async def recovery_sweep(timer: func.TimerRequest) -> None:
    await get_services().sweeper.sweep(trigger="timer")


@bp.function_name("retention_purge")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", run_on_startup=False)
async def retention_purge(timer: func.TimerRequest) -> None:
    services, now = get_services(), utc_now()
    await services.retention.purge(now=now)
    await services.audit.purge(now=now)


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "recovery_status", "recovery", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Recovery counts",
    responses={200: Reply("parked and poisoned messages, and the last sweep", RecoveryStatus), 400: BAD_PARAMETER},
)  # fmt: skip
async def recovery_status(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    return json_response(await get_services().sweeper.status())


@api.route(
    "recovery_replay", "recovery/replay", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Run the recovery sweep now",
    responses={200: Reply("what the sweep did", SweepResult), 400: BAD_PARAMETER},
)  # fmt: skip
async def recovery_replay(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    return json_response(await get_services().sweeper.replay(actor=Actor.of(caller)))
