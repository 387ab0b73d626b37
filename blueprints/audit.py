"""The audit trail: `GET /api/audit`, newest first, filtered by integration, actor, action and time."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Param, Reply
from blueprints.http import int_param, json_response, query_params
from blueprints.schemas import BAD_PARAMETER, PAGING, AuditList
from shared.audit.models import AuditAction
from shared.audit.service import DEFAULT_LIMIT, FILTER_PARAMETERS, PAGE_PARAMETERS, parse_audit_filter
from shared.auth import Principal, Role, RouteKind
from shared.services import get_services
from shared.values import API_DATETIME_PATTERN, ENVELOPE_INTEGRATION_PATTERN

bp = func.Blueprint()
api = HttpApi(bp, tag="audit")

_INSTANT = {"type": "string", "pattern": API_DATETIME_PATTERN}
FILTERS = (
    Param(
        "integration",
        "query",
        "entries about this integration",
        {"type": "string", "pattern": ENVELOPE_INTEGRATION_PATTERN},
    ),
    Param("actor", "query", "the actor's name or id, exactly", {"type": "string", "minLength": 1, "maxLength": 256}),
    Param("action", "query", "one action", {"type": "string", "enum": [action.value for action in AuditAction]}),
    Param("from", "query", "at or after this instant (ISO 8601; no offset means UTC)", _INSTANT),
    Param("to", "query", "at or before this instant (ISO 8601); must not be before `from`", _INSTANT),
)


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.
@api.route(
    "list_audit", "audit", "GET", kind=RouteKind.API, role=Role.READER,
    summary="Who did what: the audit trail, newest first",
    description="Every config change, job start, cancel and end, and recovery replay, with its actor. "
    "Filters combine with AND. An empty or unknown query parameter is a 400.",
    params=(*FILTERS, *PAGING),
    responses={200: Reply("one page, newest first", AuditList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_audit(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    params = query_params(req, (*FILTER_PARAMETERS, *PAGE_PARAMETERS))
    page = await get_services().audit.page(
        parse_audit_filter(params), limit=int_param(params, "limit", DEFAULT_LIMIT), cursor=params.get("cursor")
    )
    return json_response(AuditList(items=page.items, next_cursor=page.next_cursor))
