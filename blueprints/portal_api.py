"""Portal API: health and integration configs (failures, jobs and recovery join in later surfaces)."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import handles_errors, json_response, read_json
from shared import integration_configs
from shared.health import check_health
from shared.services import get_services

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@handles_errors
async def health(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    report = await check_health(
        services.storage, services.recovery_storage, services.names, timeout_s=services.settings.storage_timeout_s
    )
    return json_response(report, status=200 if report.status == "healthy" else 503)


@bp.function_name("list_integrations")
@bp.route(route="integrations", methods=["GET"])
@handles_errors
async def list_integrations(req: func.HttpRequest) -> func.HttpResponse:
    configs = await integration_configs.list_integrations(get_services().integrations)
    return json_response({"items": configs})


@bp.function_name("get_integration")
@bp.route(route="integrations/{integration}", methods=["GET"])
@handles_errors
async def get_integration(req: func.HttpRequest) -> func.HttpResponse:
    config = await integration_configs.load_integration(get_services().integrations, req.route_params["integration"])
    return json_response(config)


@bp.function_name("put_integration")
@bp.route(route="integrations/{integration}", methods=["PUT"])
@handles_errors
async def put_integration(req: func.HttpRequest) -> func.HttpResponse:
    config, created = await integration_configs.save_integration(
        get_services().integrations, req.route_params["integration"], read_json(req)
    )
    return json_response(config, status=201 if created else 200)


@bp.function_name("delete_integration")
@bp.route(route="integrations/{integration}", methods=["DELETE"])
@handles_errors
async def delete_integration(req: func.HttpRequest) -> func.HttpResponse:
    await integration_configs.delete_integration(get_services().integrations, req.route_params["integration"])
    return func.HttpResponse(status_code=204)
