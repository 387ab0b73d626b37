"""Failures: the overview, a filtered page, the count, one failure's detail, the groups; and the operator tools
of issue 19: facets for suggestions, export, edit-and-retry one failure, mute and unmute a group."""

from __future__ import annotations

from typing import Any

import azure.functions as func
from pydantic import BaseModel, Field

from blueprints.api import Body, HttpApi, Param, Reply
from blueprints.http import (
    FAILURE_GROUP,
    FAILURES_INTEGRATION,
    RECORD_ID,
    int_param,
    json_response,
    query_params,
    read_json,
    route_id,
)
from blueprints.schemas import (
    BAD_BODY,
    BAD_PARAMETER,
    BODY_CONTAINS,
    FAILURE_ID,
    FAILURE_INTEGRATION,
    GROUP,
    INVALID,
    NOT_JSON,
    Error,
    FailureCount,
    FailureGroupList,
    FailureList,
    FailureOverview,
)
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.errors import BadParameter
from shared.failures.edit import EditRetryRequest
from shared.failures.export import EXPORT_MAX_BYTES, EXPORT_MAX_ROWS, ExportFormat, FailureExport
from shared.failures.models import FailureDetail, GroupMute
from shared.failures.mutes import MuteRequest
from shared.failures.queries import (
    CONTENT_PARAMETER,
    DEFAULT_LIMIT,
    FACET_SCAN_ROWS,
    FILTER_PARAMETERS,
    MAX_FACET_VALUES,
    PAGE_PARAMETERS,
    Facets,
    parse_content_search,
    parse_filter,
)
from shared.services import get_services
from shared.validation import parse_model
from shared.values import utc_now

bp = func.Blueprint()
api = HttpApi(bp, tag="failures")

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


_BOOL = ["true", "false"]


class EditRetryAccepted(BaseModel):
    failure_id: str = Field(description="the failure edited (removed once the copy was enqueued)")
    message_id: str = Field(description="the id the edited copy travels under")
    parked: bool = Field(description="true when `inbound` could not take it: it waits in the recovery flow")


class Unmuted(BaseModel):
    group: str
    unmuted: bool = Field(description="false when the group was not muted")


@api.route(
    "failures_overview", "failures", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Integrations with failures",
    responses={200: Reply("most recent failure first", FailureOverview), 400: BAD_PARAMETER},
)  # fmt: skip
async def failures_overview(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    services = get_services()
    overview = await services.failures.overview(now=utc_now())
    return json_response(FailureOverview.of(overview, await services.control.held_counts()))


@api.route(
    "list_failures", "integrations/{integration}/failures", "GET", kind=RouteKind.API, role=Role.READER,
    summary="A filtered page of failures",
    description="Filters combine with AND. An empty or unknown query parameter is a 400.",
    params=(FAILURE_INTEGRATION, BODY_CONTAINS), filtered=True, paged=True,
    responses={200: Reply("one page, newest first", FailureList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_failures(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    params = query_params(req, (*FILTER_PARAMETERS, *PAGE_PARAMETERS, CONTENT_PARAMETER))
    selection = parse_filter(params)
    limit = int_param(params, "limit", DEFAULT_LIMIT)
    search = parse_content_search(params)
    failures = get_services().failures
    if search is not None:
        page = await failures.search_content(integration, selection, search, limit=limit, cursor=params.get("cursor"))
    else:
        page = await failures.page(integration, selection, limit=limit, cursor=params.get("cursor"))
    return json_response(FailureList(items=page.items, next_cursor=page.next_cursor, stopped_early=page.stopped_early))


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
    description="Each group carries `muted` while it is muted; `muted=true` lists only muted groups, "
    "`muted=false` only the others.",
    params=(
        FAILURE_INTEGRATION,
        Param("muted", "query", "only muted (true) or unmuted (false) groups", {"type": "string", "enum": _BOOL}),
    ),
    responses={200: Reply("largest group first", FailureGroupList), 400: BAD_PARAMETER},
)  # fmt: skip
async def failure_groups(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    params = query_params(req, ("muted",))
    raw = params.get("muted")
    if raw not in (None, "true", "false"):
        raise BadParameter("muted", "must be true or false")
    muted = None if raw is None else raw == "true"
    groups = await get_services().failures.groups(integration, muted=muted, now=utc_now())
    return json_response(FailureGroupList(items=groups))


@api.route(
    "failure_facets", "integrations/{integration}/failures/facets", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Known senders and receivers, for suggestions",
    description=f"The config's sender and receiver, then those of the newest {FACET_SCAN_ROWS} failures "
    f"(`complete` is false when there were more); at most {MAX_FACET_VALUES} values each.",
    params=(FAILURE_INTEGRATION,),
    responses={200: Reply("values, sorted case-insensitively", Facets), 400: BAD_PARAMETER},
)  # fmt: skip
async def failure_facets(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    services = get_services()
    config = await services.stores.integrations.get(integration)
    facets = await services.failures.facets(
        integration, sender=config.sender if config else "", receiver=config.receiver if config else ""
    )
    return json_response(facets)


_EXPORT_HEADERS: dict[str, dict[str, Any]] = {
    "X-Export-Rows": {"description": "rows in this answer", "schema": {"type": "integer"}},
    "X-Export-Truncated": {
        "description": "`true` when rows are left: continue with X-Export-Next-Cursor",
        "schema": {"type": "string", "enum": ["true", "false"]},
    },
    "X-Export-Next-Cursor": {
        "description": "pass as `cursor` for the rest (only when truncated)",
        "schema": {"type": "string"},
    },
}


@api.route(
    "export_failures", "integrations/{integration}/failures/export", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Export the matching failures as CSV or NDJSON",
    description=f"`format=csv|ndjson` (default csv); `include=content` adds each body to NDJSON lines. Built "
    f"page by page up to {EXPORT_MAX_ROWS} rows or {EXPORT_MAX_BYTES // (1024 * 1024)} MiB per request (the "
    "Functions HTTP binding sends a whole body, it cannot stream): past that the answer says "
    "`X-Export-Truncated: true` and the next request continues with `cursor`.",
    params=(
        FAILURE_INTEGRATION,
        Param("format", "query", "csv (default) or ndjson", {"type": "string", "enum": ["csv", "ndjson"]}),
        Param("include", "query", "`content`: NDJSON lines carry the body", {"type": "string", "enum": ["content"]}),
        BODY_CONTAINS,
        Param("cursor", "query", "X-Export-Next-Cursor of the previous export", {"type": "string", "maxLength": 2048}),
    ),
    filtered=True,
    responses={
        200: Reply("the rows", media_type="text/csv", schema={"type": "string"}, headers=_EXPORT_HEADERS),
        400: BAD_PARAMETER,
    },
)  # fmt: skip
async def export_failures(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    params = query_params(req, (*FILTER_PARAMETERS, "format", "include", CONTENT_PARAMETER, "cursor"))
    try:
        format = ExportFormat(params.get("format", "csv"))
    except ValueError:
        raise BadParameter("format", "must be csv or ndjson") from None
    include = params.get("include")
    if include is not None and (include != "content" or format is not ExportFormat.NDJSON):
        raise BadParameter("include", "must be 'content', with format=ndjson")
    services = get_services()
    export = await FailureExport(services.failures, services.stores.payloads).export(
        integration,
        parse_filter(params),
        format=format,
        include_content=include == "content",
        search=parse_content_search(params),
        cursor=params.get("cursor"),
    )
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "Content-Disposition": f'attachment; filename="failures-{integration}-{stamp}.{format.value}"',
        "X-Export-Rows": str(export.rows),
        "X-Export-Truncated": "true" if export.truncated else "false",
        "Cache-Control": "no-store",
    }
    if export.next_cursor is not None:
        headers["X-Export-Next-Cursor"] = export.next_cursor
    return func.HttpResponse(export.text, status_code=200, mimetype=format.media_type, charset="utf-8", headers=headers)


@api.route(
    "edit_retry_failure", "integrations/{integration}/failures/{failure_id}/edit-retry", "POST",
    kind=RouteKind.API, role=Role.OPERATOR,
    summary="Edit one failure's message and send it again",
    description="Checked as ingest checks a message (MAX_MESSAGE_BYTES, X- headers within the caps). The edited "
    "copy travels under a new message id (`<id>.edit.<hex>`, same correlation id) so receivers that deduplicate "
    "on Idempotency-Key take it; once it is enqueued the failure and its content are removed, as a retry does. "
    "The audit trail keeps sizes, SHA-256 and a bounded text diff.",
    params=(FAILURE_INTEGRATION, FAILURE_ID),
    body=Body("the corrected message", EditRetryRequest),
    responses={
        202: Reply("the edited copy is queued (or parked for recovery)", EditRetryAccepted),
        400: BAD_BODY,
        404: Reply("no such failure", Error),
        409: Reply("a pickup failure (no message to edit), or the failure changed meanwhile", Error),
        413: Reply("the body is over MAX_MESSAGE_BYTES; `details.field` names it", Error),
        415: NOT_JSON,
        422: INVALID,
        431: Reply("the headers are over 32 or 8 KiB together", Error),
    },
)  # fmt: skip
async def edit_retry_failure(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    failure_id = route_id(req, "failure_id", RECORD_ID)
    query_params(req)
    services = get_services()
    # Bodies up to MAX_MESSAGE_BYTES, as base64 inside JSON: a third more, and some room for the rest.
    limit = services.settings.max_message_bytes * 4 // 3 + 64 * 1024
    request = parse_model(EditRetryRequest, read_json(req, max_bytes=limit))
    done = await services.edit_retry.edit_retry(integration, failure_id, request, actor=Actor.of(caller), now=utc_now())
    answer = EditRetryAccepted(failure_id=done.failure_id, message_id=done.message_id, parked=done.parked)
    return json_response(answer, status=202)


@api.route(
    "mute_failure_group", "integrations/{integration}/failure-groups/{group}/mute", "POST",
    kind=RouteKind.API, role=Role.OPERATOR,
    summary="Mute a failure group (left out of overview counts and alerts)",
    params=(FAILURE_INTEGRATION, GROUP),
    body=Body("why, and optionally until when", MuteRequest),
    responses={
        200: Reply("the mute", GroupMute),
        400: BAD_BODY,
        404: Reply("the integration has no failures in this group", Error),
        415: NOT_JSON,
        422: INVALID,
    },
)  # fmt: skip
async def mute_failure_group(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    group = route_id(req, "group", FAILURE_GROUP)
    query_params(req)
    request = parse_model(MuteRequest, read_json(req))
    mute = await get_services().mutes.mute(integration, group, request, actor=Actor.of(caller), now=utc_now())
    return json_response(mute)


@api.route(
    "unmute_failure_group", "integrations/{integration}/failure-groups/{group}/unmute", "POST",
    kind=RouteKind.API, role=Role.OPERATOR,
    summary="Unmute a failure group",
    params=(FAILURE_INTEGRATION, GROUP),
    responses={200: Reply("`unmuted` is false when the group was not muted", Unmuted), 400: BAD_PARAMETER},
)  # fmt: skip
async def unmute_failure_group(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    group = route_id(req, "group", FAILURE_GROUP)
    query_params(req)
    unmuted = await get_services().mutes.unmute(integration, group, actor=Actor.of(caller), now=utc_now())
    return json_response(Unmuted(group=group, unmuted=unmuted))
