"""Integration configs: list, read, create or replace, delete (/api/integrations[/{integration}])."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import Body, HttpApi, Reply
from blueprints.http import CONFIG_ID, json_response, query_params, read_json, route_id
from blueprints.schemas import (
    BAD_BODY,
    BAD_PARAMETER,
    CONFIG_INTEGRATION,
    INVALID,
    NO_INTEGRATION,
    NOT_JSON,
    Error,
    IntegrationList,
    IntegrationView,
)
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.config.models import IntegrationConfig
from shared.services import get_services

bp = func.Blueprint()
api = HttpApi(bp, tag="integrations")

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "list_integrations", "integrations", "GET", kind=RouteKind.API, role=Role.READER,
    summary="List configs",
    responses={200: Reply("", IntegrationList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_integrations(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    services = get_services()
    states = await services.control.states()
    configs = await services.integrations.list()
    return json_response(IntegrationList(items=[IntegrationView.of(c, states.get(c.id)) for c in configs]))


@api.route(
    "get_integration", "integrations/{integration}", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Read a config",
    params=(CONFIG_INTEGRATION,),
    responses={200: Reply("the config", IntegrationView), 400: BAD_PARAMETER, 404: NO_INTEGRATION},
)  # fmt: skip
async def get_integration(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    services = get_services()
    config = await services.integrations.get(integration)
    return json_response(IntegrationView.of(config, await services.control.state_of(integration)))


@api.route(
    "put_integration", "integrations/{integration}", "PUT", kind=RouteKind.API, role=Role.ADMIN,
    summary="Create or replace a config",
    params=(CONFIG_INTEGRATION,),
    body=Body(
        "the config; `id` may be omitted (the route gives it) and must equal the route when present; "
        "`paused` (as GET shows it) is ignored",
        IntegrationConfig,
        schema_name="IntegrationConfigBody",
        optional_fields=("id",),
    ),
    responses={
        200: Reply("replaced", IntegrationConfig),
        201: Reply("created", IntegrationConfig),
        400: BAD_BODY,
        413: Reply("the body is over 64 KiB, or the config would not fit one Table property (64 KiB)", Error),
        415: NOT_JSON,
        422: INVALID,
    },
)  # fmt: skip
async def put_integration(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    config, created = await get_services().integrations.save(integration, read_json(req), actor=Actor.of(caller))
    return json_response(config, status=201 if created else 200)


@api.route(
    "delete_integration", "integrations/{integration}", "DELETE", kind=RouteKind.API, role=Role.ADMIN,
    summary="Delete a config",
    params=(CONFIG_INTEGRATION,),
    responses={204: Reply("deleted"), 400: BAD_PARAMETER, 404: NO_INTEGRATION},
)  # fmt: skip
async def delete_integration(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    await get_services().integrations.delete(integration, actor=Actor.of(caller))
    return func.HttpResponse(status_code=204)
