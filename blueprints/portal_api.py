"""Portal API: health, integration configs, failures (overview, list, count, detail, groups), OpenAPI."""

from __future__ import annotations

import functools
import json

import azure.functions as func

from blueprints.http import (
    CONFIG_ID,
    FAILURES_INTEGRATION,
    RECORD_ID,
    handles_errors,
    int_param,
    json_response,
    query_params,
    read_json,
    route_id,
)
from shared.errors import BadParameter
from shared.failures.queries import DEFAULT_LIMIT, FILTER_PARAMETERS, PAGE_PARAMETERS, parse_filter
from shared.openapi import build_openapi
from shared.operability.metrics import MAX_WINDOW_MINUTES
from shared.services import get_services

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await get_services().health.report()
    return json_response(report, status=200 if report.status == "healthy" else 503)


@bp.function_name("list_integrations")
@bp.route(route="integrations", methods=["GET"])
@handles_errors
async def list_integrations(req: func.HttpRequest) -> func.HttpResponse:
    query_params(req)
    configs = await get_services().integrations.list()
    return json_response({"items": configs})


@bp.function_name("get_integration")
@bp.route(route="integrations/{integration}", methods=["GET"])
@handles_errors
async def get_integration(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    config = await get_services().integrations.get(integration)
    return json_response(config)


@bp.function_name("put_integration")
@bp.route(route="integrations/{integration}", methods=["PUT"])
@handles_errors
async def put_integration(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    config, created = await get_services().integrations.save(integration, read_json(req))
    return json_response(config, status=201 if created else 200)


@bp.function_name("delete_integration")
@bp.route(route="integrations/{integration}", methods=["DELETE"])
@handles_errors
async def delete_integration(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", CONFIG_ID)
    query_params(req)
    await get_services().integrations.delete(integration)
    return func.HttpResponse(status_code=204)


# --- failures -----------------------------------------------------------------------------


@bp.function_name("failures_overview")
@bp.route(route="failures", methods=["GET"])
@handles_errors
async def failures_overview(req: func.HttpRequest) -> func.HttpResponse:
    query_params(req)
    return json_response({"items": await get_services().failures.overview()})


@bp.function_name("list_failures")
@bp.route(route="integrations/{integration}/failures", methods=["GET"])
@handles_errors
async def list_failures(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    params = query_params(req, (*FILTER_PARAMETERS, *PAGE_PARAMETERS))
    page = await get_services().failures.page(
        integration,
        parse_filter(params),
        limit=int_param(params, "limit", DEFAULT_LIMIT),
        cursor=params.get("cursor"),
    )
    return json_response({"items": page.items, "next_cursor": page.next_cursor})


@bp.function_name("count_failures")
@bp.route(route="integrations/{integration}/failures/count", methods=["GET"])
@handles_errors
async def count_failures(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    selection = parse_filter(query_params(req, FILTER_PARAMETERS))
    return json_response({"count": await get_services().failures.count(integration, selection)})


@bp.function_name("get_failure")
@bp.route(route="integrations/{integration}/failures/{failure_id}", methods=["GET"])
@handles_errors
async def get_failure(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    failure_id = route_id(req, "failure_id", RECORD_ID)
    query_params(req)
    return json_response(await get_services().failures.detail(integration, failure_id))


@bp.function_name("failure_groups")
@bp.route(route="integrations/{integration}/failure-groups", methods=["GET"])
@handles_errors
async def failure_groups(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    return json_response({"items": await get_services().failures.groups(integration)})


# --- OpenAPI ------------------------------------------------------------------------------


@functools.cache
def _openapi_json() -> str:
    """Built on first request (importing the app must stay cheap and never raise), then reused."""
    return json.dumps(build_openapi(), separators=(",", ":"))


@bp.function_name("openapi_document")
@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_openapi_json(), status_code=200, mimetype="application/json", charset="utf-8")


# --- metrics ------------------------------------------------------------------------------


@bp.function_name("metrics")
@bp.route(route="metrics", methods=["GET"])
@handles_errors
async def metrics(req: func.HttpRequest) -> func.HttpResponse:
    params = query_params(req, ("window_minutes",))
    services = get_services()
    window = int_param(params, "window_minutes", services.settings.metrics_window_minutes)
    if not 1 <= window <= MAX_WINDOW_MINUTES:
        raise BadParameter("window_minutes", f"must be between 1 and {MAX_WINDOW_MINUTES}")
    return json_response(services.metrics.snapshot(window_minutes=window))
