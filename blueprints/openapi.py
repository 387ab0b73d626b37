"""The OpenAPI 3.1 document of the HTTP API (GET /api/openapi.json), built from the registered operations.

Each `HttpApi.route(...)` records its operation (blueprints/api.py); this module turns them into
the document. Schemas come from the pydantic models themselves (`models_json_schema`): request
bodies in validation mode, answers in serialization mode, all under `components.schemas`.
Security follows each operation's kind and names the role it needs; the document is the same in every
AUTH_MODE (the schemes say which mode takes which): portal/API routes take a signed-in caller
(`signedIn`: Easy Auth in entra, devhost's dev users in dev) or, in key mode, a function key; ingest
takes a function key in every mode; public routes take nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from blueprints.api import Body, HttpApi, Operation, Param, Reply
from blueprints.schemas import FILTER_DESCRIPTIONS, PAGING, UNEXPECTED
from shared.auth import RouteKind
from shared.failures.models import FailureFilter

OPENAPI_VERSION = "3.1.0"
#: The HTTP contract's version; kept in step with pyproject's project version.
API_VERSION = "0.1.0"
SCHEMA_PREFIX = "#/components/schemas/"
_REF_TEMPLATE = SCHEMA_PREFIX + "{model}"

_ROLE_NOTE = (
    "Where an operation's requirement lists a role (`Rebound.Reader` < `Rebound.Operator` < `Rebound.Admin`, "
    "each including those before it), the caller must hold it (403 `forbidden` otherwise, naming "
    "`details.required_role`)."
)
_KEY_SCHEME_NOTE = (
    "A function key: what senders hold for ingest in every AUTH_MODE; for portal and API routes only in "
    "AUTH_MODE=key, where whoever holds a key holds every role. "
)
#: Who may call: a signed-in caller with an app role, or a function key (ingest; everything in key mode).
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "signedIn": {
        "type": "http",
        "scheme": "bearer",
        "description": "A signed-in caller, in AUTH_MODE=entra and dev: an Entra ID access token for the app "
        "registration (client credentials, with app roles), the App Service Authentication session cookie "
        "`AppServiceAuthSession` of a browser that signed in at `/.auth/login/aad`; locally (devhost) "
        "`Bearer dev:<user>` or the cookie `/.auth/login/dev` sets. " + _ROLE_NOTE,
    },
    "functionKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-functions-key",
        "description": _KEY_SCHEME_NOTE + _ROLE_NOTE,
    },
    "functionKeyQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "code",
        "description": "As `?code=`. " + _KEY_SCHEME_NOTE + _ROLE_NOTE,
    },
}
#: The schemes each kind of route takes (one requirement each: any one of them will do).
_KIND_SCHEMES: dict[RouteKind, tuple[str, ...]] = {
    RouteKind.PUBLIC: (),
    RouteKind.INGEST: ("functionKeyHeader", "functionKeyQuery"),
    RouteKind.API: ("signedIn", "functionKeyHeader", "functionKeyQuery"),
    RouteKind.SIGNED_IN: ("signedIn", "functionKeyHeader", "functionKeyQuery"),
}


def build_openapi(apis: Iterable[HttpApi]) -> dict[str, Any]:
    """The document as a JSON-compatible dict (a fresh one on every call); tags in the order of `apis`."""
    apis = tuple(apis)
    operations = tuple(operation for api in apis for operation in api.operations)
    refs, schemas = _schemas(operations)
    filters = _filter_params(schemas, refs)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(operation, refs, filters)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Rebound",
            "version": API_VERSION,
            "description": "Failure-recovery and retry engine: ingest, integration configs, failures, jobs, recovery. "
            "Bad input is a 4xx with `{error: {code, message, details}}` naming the parameter or field; a query "
            "parameter a route does not take is a 400 too (except on ingest, which takes any).",
        },
        "servers": [{"url": "/api"}],
        "tags": [{"name": name} for name in dict.fromkeys(api.tag for api in apis if api.operations)],
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items())), "securitySchemes": copy.deepcopy(SECURITY_SCHEMES)},
    }


_SchemaKey = tuple[type[BaseModel], JsonSchemaMode]


def _schemas(operations: tuple[Operation, ...]) -> tuple[dict[_SchemaKey, str], dict[str, Any]]:
    """Component name per (model, mode), and the component schemas."""
    keys: dict[_SchemaKey, None] = {(FailureFilter, "validation"): None}
    for operation in operations:
        if operation.body is not None and operation.body.model is not None:
            keys[(operation.body.model, "validation")] = None
        for reply in (*operation.responses.values(), UNEXPECTED):
            if reply.model is not None:
                keys[(reply.model, "serialization")] = None
    mapping, top = models_json_schema(list(keys), ref_template=_REF_TEMPLATE)
    schemas: dict[str, Any] = _hoist_defs(dict(top.get("$defs", {})))
    refs = {key: str(mapping[key]["$ref"]).removeprefix(SCHEMA_PREFIX) for key in keys}
    for operation in operations:
        body = operation.body
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


def _operation(operation: Operation, refs: Mapping[_SchemaKey, str], filters: tuple[Param, ...]) -> dict[str, Any]:
    parameters = list(operation.params)
    if operation.filtered:
        parameters += filters
    if operation.paged:
        parameters += PAGING
    document: dict[str, Any] = {"operationId": operation.name, "summary": operation.summary, "tags": [operation.tag]}
    if operation.description:
        document["description"] = operation.description
    if parameters:
        document["parameters"] = [_parameter(p) for p in parameters]
    if operation.body is not None:
        document["requestBody"] = _request_body(operation.body, refs)
    responses = {status: _response(reply, refs) for status, reply in operation.responses.items()}
    if operation.kind is RouteKind.INGEST:
        responses["401"] = {"description": "the function key is missing or wrong"}
    elif operation.kind.needs_principal:
        responses["401"] = _response(_UNAUTHENTICATED, refs)
    if operation.role is not None:
        responses["403"] = _response(_FORBIDDEN, refs)
    if operation.default_error:
        responses["default"] = _response(UNEXPECTED, refs)
    document["responses"] = dict(sorted(responses.items()))
    schemes = _KIND_SCHEMES[operation.kind]
    if schemes:
        # OpenAPI 3.1 lets a requirement on a non-OAuth scheme list the roles the operation needs.
        roles = [operation.role.value] if operation.role is not None else []
        document["security"] = [{name: list(roles)} for name in schemes]
    return document


_UNAUTHENTICATED = Reply(
    "no caller the app may trust: not signed in (or, in key mode, no valid function key); "
    "`details.reason` says why sign-in is unavailable when it is (`easy_auth_disabled`, `not_devhost`)",
    UNEXPECTED.model,
)
_FORBIDDEN = Reply("the caller lacks the role; `details.required_role` names it", UNEXPECTED.model)


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": param.location,
        "description": param.description,
        "required": param.required or param.location == "path",
        "schema": dict(param.schema),
    }


def _request_body(body: Body, refs: Mapping[_SchemaKey, str]) -> dict[str, Any]:
    media: dict[str, Any] = {}
    if body.model is not None:
        name = body.schema_name or refs[(body.model, "validation")]
        media["schema"] = {"$ref": SCHEMA_PREFIX + name}
    return {"description": body.description, "required": body.required, "content": {body.media_type: media}}


def _response(reply: Reply, refs: Mapping[_SchemaKey, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": reply.description or "OK"}
    if reply.model is not None:
        schema = {"$ref": SCHEMA_PREFIX + refs[(reply.model, "serialization")]}
        response["content"] = {reply.media_type: {"schema": schema}}
    elif reply.schema is not None:
        response["content"] = {reply.media_type: {"schema": dict(reply.schema)}}
    if reply.headers:
        response["headers"] = {name: dict(header) for name, header in reply.headers.items()}
    return response
