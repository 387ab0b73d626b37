"""Failures: the overview, a filtered page, the count, one failure's detail, and the groups."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Reply
from blueprints.http import FAILURES_INTEGRATION, RECORD_ID, int_param, json_response, query_params, route_id
from blueprints.schemas import (
    BAD_PARAMETER,
    FAILURE_ID,
    FAILURE_INTEGRATION,
    Error,
    FailureCount,
    FailureGroupList,
    FailureList,
    FailureOverview,
)
from shared.auth import Principal, Role, RouteKind
from shared.failures.models import FailureDetail
from shared.failures.queries import DEFAULT_LIMIT, FILTER_PARAMETERS, PAGE_PARAMETERS, parse_filter
from shared.services import get_services

bp = func.Blueprint()
api = HttpApi(bp, tag="failures")

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "failures_overview", "failures", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Integrations with failures",
    responses={200: Reply("most recent failure first", FailureOverview), 400: BAD_PARAMETER},
)  # fmt: skip
async def failures_overview(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    services = get_services()
    return json_response(FailureOverview.of(await services.failures.overview(), await services.control.held_counts()))


@api.route(
    "list_failures", "integrations/{integration}/failures", "GET", kind=RouteKind.API, role=Role.READER,
    summary="A filtered page of failures",
    description="Filters combine with AND. An empty or unknown query parameter is a 400.",
    params=(FAILURE_INTEGRATION,), filtered=True, paged=True,
    responses={200: Reply("one page, newest first", FailureList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_failures(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    params = query_params(req, (*FILTER_PARAMETERS, *PAGE_PARAMETERS))
    page = await get_services().failures.page(
        integration,
        parse_filter(params),
        limit=int_param(params, "limit", DEFAULT_LIMIT),
        cursor=params.get("cursor"),
    )
    return json_response(FailureList(items=page.items, next_cursor=page.next_cursor))


@api.route(
    "count_failures", "integrations/{integration}/failures/count", "GET", kind=RouteKind.API, role=Role.READER,
    summary="How many failures match",
    description="Without filters the count comes from the summary counters; with filters by scanning.",
    params=(FAILURE_INTEGRATION,), filtered=True,
    responses={200: Reply("the count", FailureCount), 400: BAD_PARAMETER},
)  # fmt: skip
async def count_failures(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    selection = parse_filter(query_params(req, FILTER_PARAMETERS))
    return json_response(FailureCount(count=await get_services().failures.count(integration, selection)))


@api.route(
    "get_failure", "integrations/{integration}/failures/{failure_id}", "GET", kind=RouteKind.API, role=Role.READER,
    summary="One failure with its content and attempt history",
    params=(FAILURE_INTEGRATION, FAILURE_ID),
    responses={200: Reply("the failure", FailureDetail), 400: BAD_PARAMETER, 404: Reply("no such failure", Error)},
)  # fmt: skip
async def get_failure(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    failure_id = route_id(req, "failure_id", RECORD_ID)
    query_params(req)
    return json_response(await get_services().failures.detail(integration, failure_id))


@api.route(
    "failure_groups", "integrations/{integration}/failure-groups", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Like-failures with their counts",
    params=(FAILURE_INTEGRATION,),
    responses={200: Reply("largest group first", FailureGroupList), 400: BAD_PARAMETER},
)  # fmt: skip
async def failure_groups(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    return json_response(FailureGroupList(items=await get_services().failures.groups(integration)))
