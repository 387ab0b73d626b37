"""The OpenAPI document: structurally valid 3.1, and in step with the functions the app registers.

No OpenAPI validator is installed (openapi-spec-validator is not a dependency), so the
structure is checked here: every $ref resolves, path templates and path parameters agree,
operationIds are unique, the object fields are the ones OpenAPI 3.1 defines.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from blueprints import portal_api
from shared.failures.models import FailureFilter
from shared.openapi import ROUTES, SECURITY_SCHEMES, build_openapi

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
DOCUMENT_KEYS = {"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components", "security"}
DOCUMENT_KEYS |= {"tags", "externalDocs"}
OPERATION_KEYS = {"tags", "summary", "description", "externalDocs", "operationId", "parameters", "requestBody"}
OPERATION_KEYS |= {"responses", "callbacks", "deprecated", "security", "servers"}
PARAMETER_KEYS = {"name", "in", "description", "required", "deprecated", "allowEmptyValue", "style", "explode"}
PARAMETER_KEYS |= {"allowReserved", "schema", "example", "examples", "content"}
COMPONENT_NAME = re.compile(r"^[a-zA-Z0-9.\-_]+$")
STATUS_KEY = re.compile(r"^([1-5][0-9][0-9]|[1-5]XX|default)$")
TEMPLATE_PARAM = re.compile(r"\{([^}]+)\}")
ANONYMOUS_OPERATIONS = {"health", "openapi_document", "portal", "portal_asset"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{where}/{index}")


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} is not a local reference"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


# --- the app's HTTP functions, from a fresh FunctionApp -----------------------------------------


def registered_http_routes() -> dict[tuple[str, str], func.Function]:
    """(method, "/route") → function, read from a fresh copy of function_app.py.

    get_functions() may be called once per app object, so the test loads function_app.py
    again as its own module: a new FunctionApp with exactly the blueprints the real one
    registers, now and after new blueprints are added.
    """
    name = "_function_app_for_openapi_test"
    spec = importlib.util.spec_from_file_location(name, ROOT / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules.pop(name, None)
    routes: dict[tuple[str, str], func.Function] = {}
    for function in module.app.get_functions():
        if not function.is_http_function():
            continue
        trigger = function.get_trigger()
        methods = getattr(trigger, "methods", None)
        assert methods, f"{function.get_function_name()} must declare its methods"
        for method in methods:
            routes[(str(getattr(method, "value", method)).lower(), "/" + normalise(trigger.route))] = function
    return routes


def normalise(route: str) -> str:
    """`{id:int}`, `{id?}`, `{*rest}` → `{id}`, `{rest}`: OpenAPI templates carry names only."""
    return TEMPLATE_PARAM.sub(lambda m: "{" + m.group(1).lstrip("*").split(":")[0].rstrip("?") + "}", route)


@pytest.fixture(scope="module")
def registered() -> dict[tuple[str, str], func.Function]:
    return registered_http_routes()


# --- structure --------------------------------------------------------------------------------


def test_document_is_openapi_3_1_with_the_api_server_prefix(document):
    # Given the built document
    # Then it declares 3.1, names the API, serves under /api and has only OpenAPI's fields
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    assert document["servers"] == [{"url": "/api"}]
    assert set(document) <= DOCUMENT_KEYS
    assert "security" not in document, "security is per operation, so anonymous routes simply have none"
    json.dumps(document)  # JSON through and through


def test_every_ref_resolves_and_no_defs_are_left_behind(document):
    # Given every $ref and discriminator mapping in the document
    refs = [(where, node["$ref"]) for where, node in walk(document) if isinstance(node.get("$ref"), str)]
    mappings = [
        (where, target)
        for where, node in walk(document)
        if isinstance(node.get("discriminator"), dict)
        for target in node["discriminator"].get("mapping", {}).values()
    ]

    # Then each points into components.schemas and resolves, and pydantic's $defs are all hoisted
    assert refs
    for where, ref in refs + mappings:
        assert ref.startswith("#/components/schemas/"), where
        resolve(document, ref)
    assert not [where for where, node in walk(document) if "$defs" in node]
    assert all(COMPONENT_NAME.match(name) for name in document["components"]["schemas"])


def test_every_schema_component_is_used(document):
    # Given the names referenced anywhere outside their own definition
    used = {
        node["$ref"].rsplit("/", 1)[1]
        for _, node in walk({"paths": document["paths"], "schemas": document["components"]["schemas"]})
        if isinstance(node.get("$ref"), str)
    }

    # Then no schema is dead weight (FailureFilter is used through JobSelection)
    assert set(document["components"]["schemas"]) <= used


def test_path_templates_and_path_parameters_agree(document):
    for path, method, operation in operations(document):
        # Given the {names} in the path and the declared parameters
        in_template = TEMPLATE_PARAM.findall(path)
        params = operation.get("parameters", [])
        declared = {p["name"] for p in params if p["in"] == "path"}

        # Then each template name is a required path parameter, and there are no extras or duplicates
        assert set(in_template) == declared, f"{method} {path}"
        assert len(in_template) == len(set(in_template)), path
        assert all(p["required"] is True for p in params if p["in"] == "path"), f"{method} {path}"
        keys = [(p["name"], p["in"]) for p in params]
        assert len(keys) == len(set(keys)), f"{method} {path} repeats a parameter"


def test_parameters_have_a_location_a_schema_and_only_openapi_fields(document):
    for path, method, operation in operations(document):
        for param in operation.get("parameters", []):
            assert param["in"] in {"path", "query", "header", "cookie"}, f"{method} {path}"
            assert "schema" in param, f"{method} {path} {param['name']}"
            assert set(param) <= PARAMETER_KEYS, f"{method} {path} {param['name']}"


def test_operation_ids_are_unique_and_operations_are_well_formed(document):
    # Given every operation
    ids = [operation["operationId"] for _, _, operation in operations(document)]

    # Then ids are unique, one per table route, and each operation has described responses
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(route.operation_id for route in ROUTES)
    for path, method, operation in operations(document):
        assert path.startswith("/") and not path.startswith("/api/"), path
        assert set(operation) <= OPERATION_KEYS, f"{method} {path}"
        assert operation["responses"], f"{method} {path}"
        for status, response in operation["responses"].items():
            assert STATUS_KEY.match(status), f"{method} {path} {status}"
            assert response["description"], f"{method} {path} {status}"
        for tag in operation["tags"]:
            assert tag in {t["name"] for t in document["tags"]}


def test_errors_have_the_one_error_shape(document):
    # Given the Error component
    schemas = document["components"]["schemas"]
    error = schemas["Error"]
    info = resolve(document, error["properties"]["error"]["$ref"])

    # Then it is {"error": {"code", "message", "details"}} and every 4xx answer uses it
    assert error["required"] == ["error"]
    assert set(info["required"]) == {"code", "message", "details"}
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if status.startswith("4") and status != "401":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
                    f"{method} {path} {status}"
                )


def test_failure_filters_are_documented_from_the_model(document):
    # Given the list and count operations
    listing = document["paths"]["/integrations/{integration}/failures"]["get"]
    count = document["paths"]["/integrations/{integration}/failures/count"]["get"]
    filters = {field.alias or name for name, field in FailureFilter.model_fields.items()}

    # Then both take every filter; only the list pages
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} == filters | {"limit", "cursor"}
    assert {p["name"] for p in count["parameters"] if p["in"] == "query"} == filters
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 500, 50)


def test_request_bodies_use_validation_schemas(document):
    # Given the config PUT and the job POST
    put = document["paths"]["/integrations/{integration}"]["put"]["requestBody"]["content"]["application/json"]
    job = document["paths"]["/integrations/{integration}/jobs"]["post"]["requestBody"]["content"]["application/json"]
    ingest = document["paths"]["/integrations/{integration}/messages"]["post"]

    # Then the PUT body may omit the route-given id, the job body is JobRequest, ingest takes anything
    body = resolve(document, put["schema"]["$ref"])
    assert "id" in body["properties"] and "id" not in body["required"]
    assert job["schema"] == {"$ref": "#/components/schemas/JobRequest"}
    assert set(ingest["requestBody"]["content"]) == {"*/*"}
    assert {p["name"] for p in ingest["parameters"] if p["in"] == "header"} == {
        "X-Sender",
        "X-Correlation-Id",
        "X-Message-Id",
    }


# --- in step with the app -----------------------------------------------------------------------


def test_every_registered_http_function_is_documented_with_its_route_and_method(document, registered):
    # Given the documented (method, path) → operationId
    documented = {(method, path): operation["operationId"] for path, method, operation in operations(document)}

    # Then each registered HTTP function is documented at its route, under its own name
    undocumented = sorted(f"{m.upper()} /api{p}" for m, p in registered if (m, p) not in documented)
    assert not undocumented, f"add these routes to shared/openapi.py ROUTES: {undocumented}"
    misnamed = {
        f"{m.upper()} {p}": (documented[(m, p)], f.get_function_name())
        for (m, p), f in registered.items()
        if documented[(m, p)] != f.get_function_name()
    }
    assert not misnamed, f"operationId must be the function name (documented, registered): {misnamed}"


def test_only_planned_routes_may_be_missing_from_the_app(document, registered):
    # Given the table's routes that the app does not register
    missing = {(route.method, route.path) for route in ROUTES} - set(registered)
    planned = {(route.method, route.path) for route in ROUTES if route.planned}

    # Then every one of them is marked planned (jobs, recovery, portal being built)
    assert missing <= planned, f"documented but not registered, and not planned: {sorted(missing - planned)}"


def test_security_is_absent_exactly_on_health_and_openapi(document):
    # Given the operations without a security requirement
    anonymous = {operation["operationId"] for _, _, operation in operations(document) if "security" not in operation}

    # Then they are health and the document itself; the rest take the key in header or query
    assert anonymous == ANONYMOUS_OPERATIONS
    assert document["components"]["securitySchemes"] == SECURITY_SCHEMES
    for _, _, operation in operations(document):
        if "security" in operation:
            assert operation["security"] == [{"functionKeyHeader": []}, {"functionKeyQuery": []}]


def test_documented_security_matches_the_registered_auth_levels(document, registered):
    # Given the registered functions that are anonymous
    anonymous = {
        f.get_function_name()
        for f in registered.values()
        if getattr(f.get_trigger(), "auth_level", None) == func.AuthLevel.ANONYMOUS
    }

    # Then exactly those are documented without security
    assert anonymous == ANONYMOUS_OPERATIONS


async def test_the_handler_serves_the_document_as_json():
    # Given a GET without a key (the route is anonymous)
    request = func.HttpRequest("GET", "http://localhost/api/openapi.json", body=b"")

    # When the handler answers
    response = await portal_api.openapi_document(request)

    # Then it is the document, as JSON
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == json.loads(json.dumps(build_openapi()))


def test_document_passes_the_openapi_3_1_validator():
    from openapi_spec_validator import validate

    validate(build_openapi())


def test_every_id_in_a_path_carries_the_pattern_the_route_checks(document):
    # The handlers refuse ids with blueprints.http.route_id; the document must say the same.
    from blueprints.http import CONFIG_ID, FAILURES_INTEGRATION, RECORD_ID

    expected = {"failure_id": RECORD_ID.pattern, "job_id": RECORD_ID.pattern}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path" or parameter["name"] == "asset":
                    continue
                name = parameter["name"]
                config_route = path == "/integrations/{integration}" or path.endswith(("/messages", "/pickup", "/run"))
                shape = (CONFIG_ID if config_route else FAILURES_INTEGRATION).pattern
                assert parameter["schema"]["pattern"] == expected.get(name, shape), f"{method} {path} {name}"


def test_the_contract_requires_the_endpoint_kind_and_exactly_one_job_selection(document):
    schemas = document["components"]["schemas"]
    for variant in ("HttpEndpoint", "StorageQueueEndpoint", "ServiceBusEndpoint"):
        assert "kind" in schemas[variant]["required"]
    assert len(schemas["JobSelection"]["oneOf"]) == 3
