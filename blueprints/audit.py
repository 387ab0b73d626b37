"""The audit trail: `GET /api/audit`, newest first, filtered by integration, actor, action and time."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Param, Reply
from blueprints.http import int_param, json_response, query_params
from blueprints.schemas import BAD_PARAMETER, PAGING, AuditList
from shared.audit.models import AuditFilter
from shared.audit.service import DEFAULT_LIMIT, FILTER_PARAMETERS, PAGE_PARAMETERS, parse_audit_filter
from shared.auth import Principal, Role, RouteKind
from shared.services import get_services

bp = func.Blueprint()
api = HttpApi(bp, tag="audit")

#: Query-string descriptions of the AuditFilter fields; their schemas come from the model.
FILTER_DESCRIPTIONS = {
    "integration": "entries about this integration",
    "actor": "the actor's name or id, exactly",
    "action": "one action",
    "from": "at or after this instant (ISO 8601; no offset means UTC)",
    "to": "at or before this instant (ISO 8601); must not be before `from`",
}


def _filter_params() -> tuple[Param, ...]:
    """The AuditFilter fields as optional query parameters, with the model's own schemas (null dropped)."""
    schema = AuditFilter.model_json_schema()
    definitions = schema.get("$defs", {})
    params = []
    for name, field in schema["properties"].items():
        [option] = [item for item in field.get("anyOf", [field]) if item.get("type") != "null"]
        if "$ref" in option:
            option = definitions[option["$ref"].rsplit("/", 1)[1]]
        param_schema = {key: value for key, value in option.items() if key not in ("title", "description")}
        params.append(Param(name, "query", FILTER_DESCRIPTIONS[name], param_schema))
    return tuple(params)


FILTERS = _filter_params()


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
