"""The OpenAPI 3.1 document of the HTTP API (GET /api/openapi.json), built from the pydantic models.

`ROUTES` is the one place that documents routes: method, path, operationId (= the Functions
function name), parameters, request body and responses. Schemas come from the models
themselves (`models_json_schema`): request bodies in validation mode, responses in
serialization mode, all under `components.schemas`. Routes marked `planned` are part of the
contract (DESIGN.md section 7) but may not be registered in the app yet.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.config.models import IntegrationConfig
from shared.failures.models import Failure, FailureDetail, FailureFilter, FailureGroup, FailureSummary
from shared.failures.queries import DEFAULT_LIMIT, MAX_LIMIT
from shared.ids import RECORD_ID_PATTERN
from shared.jobs.models import Job, JobRequest
from shared.operability.health import HealthReport
from shared.operability.metrics import MAX_WINDOW_MINUTES, MetricsSnapshot
from shared.pickup.models import PickupStatus
from shared.recovery.models import RecoveryStatus, SweepResult
from shared.values import ENVELOPE_INTEGRATION_PATTERN, INTEGRATION_ID_PATTERN

OPENAPI_VERSION = "3.1.0"
#: The HTTP contract's version; kept in step with pyproject's project version.
API_VERSION = "0.1.0"
SCHEMA_PREFIX = "#/components/schemas/"
_REF_TEMPLATE = SCHEMA_PREFIX + "{model}"
JSON = "application/json"

#: Security schemes of FUNCTION-level routes: the function key in a header or in the query.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
    "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
}


# --- response shapes that have no domain model of their own ---------------------------------


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. `bad_parameter`, `job_active`")
    message: str = Field(description="human-readable explanation")
    details: dict[str, Any] = Field(
        description="structured context: `parameter` (400), `fields` (422), `active_job_id` (409), ..."
    )


class Error(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorInfo


class IntegrationList(BaseModel):
    items: list[IntegrationConfig]


class FailureOverview(BaseModel):
    items: list[FailureSummary]


class FailureList(BaseModel):
    items: list[Failure] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null only when nothing more can match"
    )


class FailureCount(BaseModel):
    count: Annotated[int, Field(ge=0)]


class FailureGroupList(BaseModel):
    items: list[FailureGroup] = Field(description="largest group first")


class JobList(BaseModel):
    items: list[Job]


class MessageAccepted(BaseModel):
    id: str = Field(description="the message id (X-Message-Id when given)")
    correlation_id: str | None = Field(description="X-Correlation-Id when given, else the message id")


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    location: Literal["path", "query", "header"]
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Body:
    description: str
    model: type[BaseModel] | None = None
    #: Non-JSON bodies: the media type (e.g. `*/*`) and no schema.
    media_type: str = JSON
    #: Document the model under this name with these fields optional (e.g. a route-given id).
    schema_name: str | None = None
    optional_fields: tuple[str, ...] = ()
    required: bool = True


@dataclass(frozen=True)
class Reply:
    description: str
    model: type[BaseModel] | None = None
    media_type: str = JSON
    #: For non-model content (HTML).
    schema: Mapping[str, Any] | None = None
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    method: Literal["get", "put", "post", "delete"]
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[str, Reply]
    parameters: tuple[Param, ...] = ()
    body: Body | None = None
    secured: bool = True
    #: In the contract but possibly not registered in the app yet.
    planned: bool = False
    description: str = ""
    #: Takes the failure filters as query parameters; `paged` adds limit and cursor.
    filtered: bool = False
    paged: bool = False
    #: Documents the generic error answer as `default` (not for answers that never fail).
    default_error: bool = True


def _integration(pattern: str = ENVELOPE_INTEGRATION_PATTERN) -> Param:
    return Param("integration", "path", "integration id", {"type": "string", "pattern": pattern}, True)


_CONFIG_INTEGRATION = _integration(INTEGRATION_ID_PATTERN)
_FAILURE_INTEGRATION = _integration()
_RECORD_ID = {"type": "string", "pattern": RECORD_ID_PATTERN}
_FAILURE_ID = Param("failure_id", "path", "a failure's `id` (stable; sorts newest first)", _RECORD_ID, required=True)
_JOB_ID = Param("job_id", "path", "a job's `id`", _RECORD_ID, required=True)

#: Query-string descriptions of the FailureFilter fields; their schemas come from the model.
FILTER_DESCRIPTIONS: dict[str, str] = {
    "from": "failed at or after this instant (ISO 8601; no offset means UTC)",
    "to": "failed at or before this instant (ISO 8601); must not be before `from`",
    "q": "the reason contains this text, case-insensitive (applied while scanning: a page may be short)",
    "sender": "exact sender",
    "receiver": "exact receiver",
    "origin": "where the failure arose",
    "group": "a failure group's fingerprint (see failure-groups)",
}
_PAGING = (
    Param(
        "limit",
        "query",
        "page size",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    Param(
        "cursor",
        "query",
        "the `next_cursor` of the previous page (opaque; any other value is a 400)",
        {"type": "string", "minLength": 1, "maxLength": 2048},
    ),
)
_INGEST_HEADERS = (
    Param("X-Sender", "header", "the sending system; defaults to the config's sender"),
    Param(
        "X-Correlation-Id",
        "header",
        "traces the message end to end; defaults to the message id",
        {"type": "string", "maxLength": 256},
    ),
    Param(
        "X-Message-Id",
        "header",
        "the message id, sent on as Idempotency-Key: a retried POST with the same id reaches the receiver "
        "under the same key, so it can drop the duplicate; generated when absent",
        {"type": "string", "pattern": r"^[A-Za-z0-9._:-]+$", "maxLength": 128},
    ),
)

_400 = Reply(
    "a path or query parameter is invalid (malformed, empty, or not one this route takes); "
    "`details.parameter` names it",
    Error,
)
_400_BODY = Reply(
    "a path or query parameter is invalid (`details.parameter` names it), or the body is not JSON "
    "(`details.field` is `body`: empty, malformed, NaN/Infinity, nested too deeply)",
    Error,
)
_404_INTEGRATION = Reply("the integration does not exist", Error)
_413_BODY = Reply("the body is over 64 KiB, or the config would not fit one Table property (64 KiB)", Error)
_415 = Reply("the Content-Type is not `application/json` (absent is taken as JSON)", Error)
_422 = Reply("the body does not validate; `details.fields` lists `{field, message}`", Error)

ROUTES: tuple[Route, ...] = (
    Route(
        "get",
        "/health",
        "health",
        "Dependency checks",
        "health",
        {
            "200": Reply("every dependency is reachable", HealthReport),
            "503": Reply("a dependency is unreachable", HealthReport),
        },
        secured=False,
    ),
    Route(
        "get",
        "/openapi.json",
        "openapi_document",
        "This OpenAPI document",
        "meta",
        {"200": Reply("the OpenAPI 3.1 document", schema={"type": "object"})},
        secured=False,
        default_error=False,
    ),
    Route(
        "get",
        "/portal",
        "portal",
        "The Failures page",
        "portal",
        {
            "200": Reply("the portal page", media_type="text/html", schema={"type": "string"}),
            "304": Reply("unchanged since the ETag in If-None-Match"),
            "308": Reply("`/portal/` redirects to `/portal` (the page's relative links need it)"),
        },
        secured=False,
        description="Anonymous: the page holds no data; it asks for the function key and sends it with every "
        "API call. `?code=<key>` in the page URL is taken as that key and removed from the address bar.",
    ),
    Route(
        "get",
        "/portal/{asset}",
        "portal_asset",
        "A static file of the Failures page (script, style, icon)",
        "portal",
        {
            "200": Reply("the file, with its content type", media_type="*/*", schema={"type": "string"}),
            "304": Reply("unchanged since the ETag in If-None-Match"),
            "404": Reply("no such file (or a path that leaves portal/)", Error),
        },
        (
            Param(
                "asset", "path", "path under portal/, e.g. `js/main.js` (a catch-all: may contain `/`)", required=True
            ),
        ),
        secured=False,
    ),
    # --- integration configs
    Route(
        "get",
        "/integrations",
        "list_integrations",
        "List configs",
        "integrations",
        {"200": Reply("", IntegrationList), "400": _400},
    ),
    Route(
        "get",
        "/integrations/{integration}",
        "get_integration",
        "Read a config",
        "integrations",
        {"200": Reply("the config", IntegrationConfig), "400": _400, "404": _404_INTEGRATION},
        (_CONFIG_INTEGRATION,),
    ),
    Route(
        "put",
        "/integrations/{integration}",
        "put_integration",
        "Create or replace a config",
        "integrations",
        {
            "200": Reply("replaced", IntegrationConfig),
            "201": Reply("created", IntegrationConfig),
            "400": _400_BODY,
            "413": _413_BODY,
            "415": _415,
            "422": _422,
        },
        (_CONFIG_INTEGRATION,),
        Body(
            "the config; `id` may be omitted (the route gives it) and must equal the route when present",
            IntegrationConfig,
            schema_name="IntegrationConfigBody",
            optional_fields=("id",),
        ),
    ),
    Route(
        "delete",
        "/integrations/{integration}",
        "delete_integration",
        "Delete a config",
        "integrations",
        {"204": Reply("deleted"), "400": _400, "404": _404_INTEGRATION},
        (_CONFIG_INTEGRATION,),
    ),
    # --- ingest
    Route(
        "post",
        "/integrations/{integration}/messages",
        "ingest_message",
        "Send a message through the integration",
        "ingest",
        {
            "202": Reply("accepted: queued (or parked for recovery) for delivery", MessageAccepted),
            "400": Reply("the integration in the path or a header is invalid; `details.parameter` names it", Error),
            "404": _404_INTEGRATION,
            "413": Reply("the body is larger than MAX_MESSAGE_BYTES", Error),
            "503": Reply(
                "neither `inbound` nor the recovery queue can take the message",
                Error,
                headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
            ),
        },
        (_CONFIG_INTEGRATION, *_INGEST_HEADERS),
        Body(
            "any content, empty included; the Content-Type travels with the message", media_type="*/*", required=False
        ),
        description="Other `X-` headers travel with the message to the receiver.",
    ),
    # --- failures
    Route(
        "get",
        "/failures",
        "failures_overview",
        "Integrations with failures",
        "failures",
        {"200": Reply("most recent failure first", FailureOverview), "400": _400},
    ),
    Route(
        "get",
        "/integrations/{integration}/failures",
        "list_failures",
        "A filtered page of failures",
        "failures",
        {"200": Reply("one page, newest first", FailureList), "400": _400},
        (_FAILURE_INTEGRATION,),
        description="Filters combine with AND. An empty or unknown query parameter is a 400.",
        filtered=True,
        paged=True,
    ),
    Route(
        "get",
        "/integrations/{integration}/failures/count",
        "count_failures",
        "How many failures match",
        "failures",
        {"200": Reply("the count", FailureCount), "400": _400},
        (_FAILURE_INTEGRATION,),
        description="Without filters the count comes from the summary counters; with filters by scanning.",
        filtered=True,
    ),
    Route(
        "get",
        "/integrations/{integration}/failures/{failure_id}",
        "get_failure",
        "One failure with its content and attempt history",
        "failures",
        {"200": Reply("the failure", FailureDetail), "400": _400, "404": Reply("no such failure", Error)},
        (_FAILURE_INTEGRATION, _FAILURE_ID),
    ),
    Route(
        "get",
        "/integrations/{integration}/failure-groups",
        "failure_groups",
        "Like-failures with their counts",
        "failures",
        {"200": Reply("largest group first", FailureGroupList), "400": _400},
        (_FAILURE_INTEGRATION,),
    ),
    # --- jobs
    Route(
        "post",
        "/integrations/{integration}/jobs",
        "start_job",
        "Start a retry or delete job",
        "jobs",
        {
            "202": Reply("accepted; runs page by page", Job),
            "400": _400_BODY,
            "404": Reply("the integration has neither a config nor failures", Error),
            "409": Reply("a job is already active; `details.active_job_id` names it", Error),
            "413": Reply("the body is over 64 KiB", Error),
            "415": _415,
            "422": _422,
        },
        (_FAILURE_INTEGRATION,),
        Body("what to do with which failures", JobRequest),
    ),
    Route(
        "get",
        "/integrations/{integration}/jobs",
        "list_jobs",
        "The integration's jobs",
        "jobs",
        {"200": Reply("", JobList), "400": _400},
        (_FAILURE_INTEGRATION,),
    ),
    Route(
        "get",
        "/integrations/{integration}/jobs/{job_id}",
        "get_job",
        "A job's status",
        "jobs",
        {"200": Reply("the job", Job), "400": _400, "404": Reply("no such job", Error)},
        (_FAILURE_INTEGRATION, _JOB_ID),
    ),
    Route(
        "post",
        "/integrations/{integration}/jobs/{job_id}/cancel",
        "cancel_job",
        "Cancel a job (it stops at the next page boundary)",
        "jobs",
        {
            "202": Reply("cancel requested", Job),
            "400": _400,
            "404": Reply("no such job", Error),
            "409": Reply("the job has already finished", Error),
        },
        (_FAILURE_INTEGRATION, _JOB_ID),
    ),
    # --- recovery
    Route(
        "get",
        "/recovery",
        "recovery_status",
        "Recovery counts",
        "recovery",
        {"200": Reply("parked and poisoned messages, and the last sweep", RecoveryStatus), "400": _400},
    ),
    Route(
        "post",
        "/recovery/replay",
        "recovery_replay",
        "Run the recovery sweep now",
        "recovery",
        {"200": Reply("what the sweep did", SweepResult), "400": _400},
    ),
    # --- pickup
    Route(
        "get",
        "/integrations/{integration}/pickup",
        "get_pickup",
        "The pickup source's status: its last run, failures in a row, items picked, the next run",
        "pickup",
        {
            "200": Reply("the status", PickupStatus),
            "400": _400,
            "404": Reply("the integration does not exist, or has no `source`", Error),
        },
        (_CONFIG_INTEGRATION,),
    ),
    Route(
        "post",
        "/integrations/{integration}/pickup/run",
        "run_pickup",
        "Pick up now: run the source at once, without waiting for its interval",
        "pickup",
        {
            "202": Reply("the run has started (GET the status for its outcome)", PickupStatus),
            "400": _400,
            "404": Reply("the integration does not exist, or has no `source`", Error),
            "409": Reply("the source is disabled (`enabled: false`)", Error),
        },
        (_CONFIG_INTEGRATION,),
        description="When another run holds the source, this one runs once that has ended (the next timer tick).",
    ),
    # --- operability
    Route(
        "get",
        "/metrics",
        "metrics",
        "Counters of this instance, per integration and in total: since start and in the window",
        "operability",
        {"200": Reply("the counters", MetricsSnapshot), "400": _400},
        (
            Param(
                "window_minutes",
                "query",
                "length of the recent window (default METRICS_WINDOW_MINUTES)",
                {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_MINUTES},
            ),
        ),
    ),
)

# --- building the document ------------------------------------------------------------------


def build_openapi(routes: Iterable[Route] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document as a JSON-compatible dict (a fresh one on every call)."""
    routes = tuple(routes)
    refs, schemas = _schemas(routes)
    filters = _filter_params(schemas, refs)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs, filters)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Rebound",
            "version": API_VERSION,
            "description": "Failure-recovery and retry engine: ingest, integration configs, failures, jobs, recovery. "
            "Bad input is a 4xx with `{error: {code, message, details}}` naming the parameter or field; a query "
            "parameter a route does not take is a 400 too (except on ingest, which takes any).",
        },
        "servers": [{"url": "/api"}],
        "tags": [{"name": name} for name in dict.fromkeys(route.tag for route in routes)],
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": copy.deepcopy(SECURITY_SCHEMES)},
    }
    return document


_SchemaKey = tuple[type[BaseModel], JsonSchemaMode]


def _schemas(routes: tuple[Route, ...]) -> tuple[dict[_SchemaKey, str], dict[str, Any]]:
    """Component name per (model, mode), and the component schemas."""
    keys: dict[_SchemaKey, None] = {(FailureFilter, "validation"): None}
    for route in routes:
        if route.body is not None and route.body.model is not None:
            keys[(route.body.model, "validation")] = None
        for reply in route.responses.values():
            if reply.model is not None:
                keys[(reply.model, "serialization")] = None
    mapping, top = models_json_schema(list(keys), ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = _hoist_defs(dict(top.get("$defs", {})))
    refs = {key: str(mapping[key]["$ref"]).removeprefix(SCHEMA_PREFIX) for key in keys}
    for route in routes:
        body = route.body
        if body is not None and body.model is not None and body.schema_name is not None:
            base = copy.deepcopy(schemas[refs[(body.model, "validation")]])
            base["title"] = body.schema_name
            base["required"] = [name for name in base.get("required", []) if name not in body.optional_fields]
            schemas[body.schema_name] = base
    return refs, schemas


def _hoist_defs(schemas: dict[str, Any]) -> dict[str, Any]:
    """Move any nested `$defs` up into the component schemas and point `#/$defs/` refs there."""
    hoisted: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for name, nested in node.pop("$defs", {}).items():
                hoisted[name] = walk(nested)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = SCHEMA_PREFIX + ref.removeprefix("#/$defs/")
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result = {name: walk(schema) for name, schema in schemas.items()}
    return {**hoisted, **result}


def _filter_params(schemas: dict[str, Any], refs: Mapping[_SchemaKey, str]) -> tuple[Param, ...]:
    """The FailureFilter fields as optional query parameters (null dropped: absent is null)."""
    properties: dict[str, Any] = schemas[refs[(FailureFilter, "validation")]]["properties"]
    params = []
    for name, schema in properties.items():
        options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        param_schema = dict(options[0]) if len(options) == 1 else {"anyOf": options}
        params.append(Param(name, "query", FILTER_DESCRIPTIONS.get(name, name), param_schema))
    return tuple(params)


def _operation(route: Route, refs: Mapping[_SchemaKey, str], filters: tuple[Param, ...]) -> dict[str, Any]:
    parameters = list(route.parameters)
    if route.filtered:
        parameters += filters
    if route.paged:
        parameters += _PAGING
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.description:
        operation["description"] = route.description
    if parameters:
        operation["parameters"] = [_parameter(p) for p in parameters]
    if route.body is not None:
        operation["requestBody"] = _request_body(route.body, refs)
    responses = {status: _response(reply, refs) for status, reply in route.responses.items()}
    if route.secured:
        responses["401"] = {"description": "the function key is missing or wrong"}
    if route.default_error:
        responses["default"] = _response(Reply("unexpected error, e.g. 503 when storage is unavailable", Error), refs)
    operation["responses"] = dict(sorted(responses.items()))
    if route.secured:
        operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return operation


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": param.required or param.location == "path",
        "schema": dict(param.schema),
    }


def _ref(model: type[BaseModel], mode: JsonSchemaMode, refs: Mapping[_SchemaKey, str]) -> dict[str, str]:
    return {"$ref": SCHEMA_PREFIX + refs[(model, mode)]}


def _request_body(body: Body, refs: Mapping[_SchemaKey, str]) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if body.model is not None:
        name = body.schema_name or refs[(body.model, "validation")]
        media["schema"] = {"$ref": SCHEMA_PREFIX + name}
    return {"description": body.description, "required": body.required, "content": {body.media_type: media}}


def _response(reply: Reply, refs: Mapping[_SchemaKey, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": reply.description or "OK"}
    if reply.model is not None:
        response["content"] = {reply.media_type: {"schema": _ref(reply.model, "serialization", refs)}}
    elif reply.schema is not None:
        response["content"] = {reply.media_type: {"schema": dict(reply.schema)}}
    if reply.headers:
        response["headers"] = {name: dict(header) for name, header in reply.headers.items()}
    return response
