"""Alerts surface: rules (/api/alert-rules), what fired (/api/alerts), "send test alert", the timer, the event queue."""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel

from blueprints.api import Body, HttpApi, Param, Reply
from blueprints.http import CONFIG_ID, int_param, json_response, query_params, read_json, route_id
from blueprints.schemas import BAD_BODY, BAD_PARAMETER, INVALID, NOT_JSON, Error
from shared.alerts.models import Alert, AlertRule, RuleView
from shared.alerts.service import MAX_ALERTS
from shared.alerts.signals import parse_signal
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.errors import BadParameter
from shared.services import get_services

bp = func.Blueprint()
api = HttpApi(bp, tag="alerts")

#: Rule ids have the shape of integration ids.
RULE_ID = Param("rule_id", "path", "alert rule id", {"type": "string", "pattern": CONFIG_ID.pattern}, required=True)
NO_RULE = Reply("no such alert rule", Error)


class RuleList(BaseModel):
    items: list[RuleView]


class AlertList(BaseModel):
    items: list[Alert]


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "list_alert_rules", "alert-rules", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Alert rules with their state (channel URLs with credential parts masked)",
    responses={200: Reply("", RuleList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_alert_rules(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    return json_response(RuleList(items=await get_services().alert_rules.views()))


@api.route(
    "get_alert_rule", "alert-rules/{rule_id}", "GET", kind=RouteKind.API, role=Role.READER,
    summary="One alert rule and its state",
    params=(RULE_ID,),
    responses={200: Reply("the rule", RuleView), 400: BAD_PARAMETER, 404: NO_RULE},
)  # fmt: skip
async def get_alert_rule(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    rule_id = route_id(req, "rule_id", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().alert_rules.get(rule_id))


@api.route(
    "put_alert_rule", "alert-rules/{rule_id}", "PUT", kind=RouteKind.API, role=Role.ADMIN,
    summary="Create or replace an alert rule",
    description="Channel URLs follow the endpoint rules (no private or metadata addresses unless allowed); "
    "`secret_setting` must be listed in ENDPOINT_SECRET_SETTINGS; a URL sent back masked as GET shows it "
    "keeps the stored one.",
    params=(RULE_ID,),
    body=Body("the rule; `id` may be omitted (the route gives it)", AlertRule, schema_name="AlertRuleBody",
              optional_fields=("id",)),
    responses={
        200: Reply("replaced", RuleView),
        201: Reply("created", RuleView),
        400: BAD_BODY,
        413: Reply("the body is over 64 KiB", Error),
        415: NOT_JSON,
        422: INVALID,
    },
)  # fmt: skip
async def put_alert_rule(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    rule_id = route_id(req, "rule_id", CONFIG_ID)
    query_params(req)
    view, created = await get_services().alert_rules.put(rule_id, read_json(req), actor=Actor.of(caller))
    return json_response(view, status=201 if created else 200)


@api.route(
    "delete_alert_rule", "alert-rules/{rule_id}", "DELETE", kind=RouteKind.API, role=Role.ADMIN,
    summary="Delete an alert rule",
    params=(RULE_ID,),
    responses={204: Reply("deleted"), 400: BAD_PARAMETER, 404: NO_RULE},
)  # fmt: skip
async def delete_alert_rule(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    rule_id = route_id(req, "rule_id", CONFIG_ID)
    query_params(req)
    await get_services().alert_rules.delete(rule_id, actor=Actor.of(caller))
    return func.HttpResponse(status_code=204)


@api.route(
    "test_alert_rule", "alert-rules/{rule_id}/test", "POST", kind=RouteKind.API, role=Role.ADMIN,
    summary="Send a test alert through the rule's channel now",
    description="The notice carries what the rule measures right now, marked as a test; the answer says "
    "whether it went out (`fired_notice`, `last_error`).",
    params=(RULE_ID,),
    responses={200: Reply("the test alert as sent (or not)", Alert), 400: BAD_PARAMETER, 404: NO_RULE},
)  # fmt: skip
async def test_alert_rule(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    rule_id = route_id(req, "rule_id", CONFIG_ID)
    query_params(req)
    return json_response(await get_services().alert_rules.test(rule_id, actor=Actor.of(caller)))


@api.route(
    "list_alerts", "alerts", "GET", kind=RouteKind.API, role=Role.READER,
    summary="What fired, newest first: firing or resolved, and whether the notices went out",
    params=(Param("limit", "query", f"at most this many (1-{MAX_ALERTS}, default 50)",
                  {"type": "integer", "minimum": 1, "maximum": MAX_ALERTS}),),
    responses={200: Reply("", AlertList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_alerts(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    params = query_params(req, ("limit",))
    limit = int_param(params, "limit", 50)
    if not 1 <= limit <= MAX_ALERTS:
        raise BadParameter("limit", f"must be between 1 and {MAX_ALERTS}")
    return json_response(AlertList(items=await get_services().alert_rules.alerts(limit=limit)))


@bp.function_name("alert_timer")
@bp.timer_trigger(arg_name="timer", schedule="%ALERT_SCHEDULE%", run_on_startup=False)
async def alert_timer(timer: func.TimerRequest) -> None:
    await get_services().alert_evaluator.evaluate_all()


@bp.function_name("alert_event")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%alert-events", connection="AzureWebJobsStorage")
async def alert_event(msg: func.QueueMessage) -> None:
    kind, integration = parse_signal(msg.get_body())
    await get_services().alert_evaluator.evaluate_event(kind, integration)
