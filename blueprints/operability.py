"""Operability: GET /health, GET /metrics, and GET /openapi.json, the document of every HTTP route.

This module collects every surface's `HttpApi` for the document, so it imports the other
blueprints and none of them imports it (function_app.py is its only importer).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import azure.functions as func

from blueprints import (
    alerts,
    audit,
    control,
    failures,
    identity,
    ingest,
    integrations,
    jobs,
    pickup,
    recovery,
    timeline,
    ui,
)
from blueprints.api import HttpApi, Operation, Param, Reply
from blueprints.http import int_param, json_response, query_params
from blueprints.openapi import build_openapi
from blueprints.schemas import BAD_PARAMETER
from shared.auth import Principal, Role, RouteKind
from shared.errors import BadParameter
from shared.operability.health import HealthReport
from shared.operability.metrics import MAX_WINDOW_MINUTES, MetricsSnapshot
from shared.services import get_services

bp = func.Blueprint()
#: One tag each, as the document groups them.
health_api = HttpApi(bp, tag="health")
meta_api = HttpApi(bp, tag="meta")
api = HttpApi(bp, tag="operability")


def _surfaces() -> list[HttpApi]:
    """Every surface's routes, in the order the document lists their tags."""
    others = [
        *(ui.api, identity.api, integrations.api, control.api, ingest.api, failures.api, timeline.api),
        *(jobs.api, recovery.api),
    ]
    return [health_api, meta_api, *others, pickup.api, alerts.api, audit.api, api]


def api_document() -> dict[str, Any]:
    """The OpenAPI document of every HTTP route the app registers, tags in this order."""
    return build_openapi(_surfaces())


def registered_operations() -> list[Operation]:
    """Every HTTP route the app registers, as declared (the role matrix test walks them all)."""
    return [operation for surface in _surfaces() for operation in surface.operations]


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@health_api.route(
    "health", "health", "GET", kind=RouteKind.PUBLIC, role=None,
    summary="Dependency checks",
    responses={
        200: Reply("every dependency is reachable", HealthReport),
        503: Reply("a dependency is unreachable", HealthReport),
    },
)  # fmt: skip
async def health(req: func.HttpRequest) -> func.HttpResponse:
    report = await get_services().health.report()
    return json_response(report, status=200 if report.status == "healthy" else 503)


@functools.cache
def _openapi_json() -> str:
    """Built on first request (importing the app must stay cheap and never raise), then reused."""
    return json.dumps(api_document(), separators=(",", ":"))


@meta_api.route(
    "openapi_document", "openapi.json", "GET", kind=RouteKind.PUBLIC, role=None,
    summary="This OpenAPI document",
    responses={200: Reply("the OpenAPI 3.1 document", schema={"type": "object"})},
    default_error=False,
)  # fmt: skip
async def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_openapi_json(), status_code=200, mimetype="application/json", charset="utf-8")


_WINDOW = Param(
    "window_minutes",
    "query",
    "length of the recent window (default METRICS_WINDOW_MINUTES)",
    {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_MINUTES},
)


@api.route(
    "metrics", "metrics", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Counters of this instance, per integration and in total: since start and in the window",
    params=(_WINDOW,),
    responses={200: Reply("the counters", MetricsSnapshot), 400: BAD_PARAMETER},
)  # fmt: skip
async def metrics(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    params = query_params(req, ("window_minutes",))
    services = get_services()
    window = int_param(params, "window_minutes", services.settings.metrics_window_minutes)
    if not 1 <= window <= MAX_WINDOW_MINUTES:
        raise BadParameter("window_minutes", f"must be between 1 and {MAX_WINDOW_MINUTES}")
    snapshot = services.metrics.snapshot(window_minutes=window)
    snapshot.held = await services.control.held_counts()
    return json_response(snapshot)
