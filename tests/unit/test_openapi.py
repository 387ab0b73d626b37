"""The OpenAPI document: structurally valid 3.1, in step with the functions the app registers, and
unchanged from main's before it was generated from the routes (tests/unit/openapi_snapshot.json).

Besides openapi-spec-validator, the structure is checked here: every $ref resolves, path templates
and path parameters agree, operationIds are unique, the object fields are the ones OpenAPI 3.1 defines.
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

from blueprints import operability
from blueprints.api import openapi_path
from blueprints.openapi import SECURITY_SCHEMES
from blueprints.operability import api_document
from shared.auth import Role
from shared.failures.models import FailureFilter

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
PUBLIC_OPERATIONS = {"health", "openapi_document", "portal", "portal_asset", "portal_config"}
INGEST_OPERATIONS = {"ingest", "ingest_message"}
SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return api_document()


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
            routes[(str(getattr(method, "value", method)).lower(), openapi_path(trigger.route))] = function
    return routes


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

    # Then ids are unique, and each operation has described responses
    assert len(ids) == len(set(ids))
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

    # Then both take every filter; only the list pages, and searches content (issue 19)
    listed = {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert listed == filters | {"limit", "cursor", "body_contains"}
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


def test_documented_operations_are_exactly_the_registered_http_functions(document, registered):
    # Given the documented operations and the app's HTTP functions, each as (METHOD /route, name)
    documented = {
        (f"{method.upper()} {path}", operation["operationId"]) for path, method, operation in operations(document)
    }
    functions = {(f"{method.upper()} {path}", f.get_function_name()) for (method, path), f in registered.items()}

    # Then they are the same: every function is documented at its route under its own name, and
    # nothing is documented that the app does not serve
    assert sorted(functions - documented) == [], "registered but not documented (or under another name)"
    assert sorted(documented - functions) == [], "documented but not registered"


def test_security_is_absent_exactly_on_the_public_routes(document):
    # Given the operations without a security requirement
    anonymous = {operation["operationId"] for _, _, operation in operations(document) if "security" not in operation}

    # Then they are health, the document itself and the portal's files and config; ingest takes a function
    # key; every other route a signed-in caller (entra, dev) or, in key mode, a function key
    assert anonymous == PUBLIC_OPERATIONS
    assert document["components"]["securitySchemes"] == SECURITY_SCHEMES
    for _, _, operation in operations(document):
        if "security" not in operation:
            continue
        schemes = [list(requirement) for requirement in operation["security"]]
        if operation["operationId"] in INGEST_OPERATIONS:
            assert schemes == [["functionKeyHeader"], ["functionKeyQuery"]]
        else:
            assert schemes == [["signedIn"], ["functionKeyHeader"], ["functionKeyQuery"]]
        assert "401" in operation["responses"]


#: Issue 17: a Reader reads everything; an Operator also starts and cancels jobs and replays recovery;
#: an Admin also changes integration configs. Ingest is for senders (a function key, no role); `me` is for
#: anyone signed in.
ROLES = {
    "put_integration": Role.ADMIN,
    "delete_integration": Role.ADMIN,
    "start_job": Role.OPERATOR,
    "cancel_job": Role.OPERATOR,
    "recovery_replay": Role.OPERATOR,
    "run_pickup": Role.OPERATOR,
    "pause_integration": Role.OPERATOR,
    "resume_integration": Role.OPERATOR,
    "edit_retry_failure": Role.OPERATOR,
    "mute_failure_group": Role.OPERATOR,
    "unmute_failure_group": Role.OPERATOR,
    "put_alert_rule": Role.ADMIN,
    "delete_alert_rule": Role.ADMIN,
    "test_alert_rule": Role.ADMIN,
    "ingest_message": None,
    "ingest": None,
    "me": None,
}


def test_each_secured_operation_names_the_role_it_is_for_and_documents_the_403(document):
    for path, method, operation in operations(document):
        if "security" not in operation:
            continue
        # Given the roles listed in its security requirements
        listed = {tuple(roles) for requirement in operation["security"] for roles in requirement.values()}
        name = operation["operationId"]
        role = ROLES.get(name, Role.READER)

        # Then every alternative lists the one role issue 17 gives it (none on ingest and `me`)
        assert listed == {(role.value,) if role else ()}, f"{method.upper()} {path}"
        # And an operation with a role can answer 403
        assert ("403" in operation["responses"]) == (role is not None), f"{method.upper()} {path}"


def test_the_public_operations_are_anonymous_in_every_mode_and_ingest_keeps_its_key(document, registered):
    # Given the registered functions by level
    def level(function: func.Function) -> str:
        value = getattr(function.get_trigger(), "auth_level", None)
        return str(getattr(value, "value", value)).lower()

    by_name = {f.get_function_name(): level(f) for f in registered.values()}

    # Then the undocumented-security ones are anonymous, and ingest takes the function key
    assert {name for name in PUBLIC_OPERATIONS} <= {name for name, value in by_name.items() if value == "anonymous"}
    assert {by_name[name] for name in INGEST_OPERATIONS} == {"function"}


#: What issue 17 (part 2) added to the document: operations, and the schemas only they use.
NEW_OPERATIONS = {"ingest", "me", "list_audit", "portal_config"}
NEW_SCHEMAS = {"Actor", "AuditAction", "AuditEntry", "AuditList", "AuthMode", "Role", "SignInConfig", "SignedIn"}


def test_the_document_is_mains_but_for_the_listed_changes(document):
    # Given the generated document without what issue 17 added (its new operations, their schemas, and the
    # `created_by` jobs now carry)
    generated = without_issue_17_additions(document)

    # And main's document as it was served before it was generated from the routes, with the deliberate
    # changes applied to it
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    # 1-3. Issue 17: security per kind and role, the 401/403 envelopes, the page's and ingest's descriptions.
    with_issue_17_security(expected, generated)
    expected["components"]["securitySchemes"] = document["components"]["securitySchemes"]
    # 4. Ingest's answer documents `parked`, which it always sent (the handler now returns the model).
    accepted = expected["components"]["schemas"]["MessageAccepted"]
    accepted["properties"]["parked"] = document["components"]["schemas"]["MessageAccepted"]["properties"]["parked"]
    accepted["required"].append("parked")
    # 5. Issue 16, pickup: its two routes under their own tag, an optional `source` on the config (a union
    #    of five source models), the status model, and the failure origin `pickup`; nothing else moves.
    schemas = generated["components"]["schemas"]
    pickup_paths = ("/integrations/{integration}/pickup", "/integrations/{integration}/pickup/run")
    expected["paths"].update({path: generated["paths"][path] for path in pickup_paths})
    expected["tags"].insert(expected["tags"].index({"name": "recovery"}) + 1, {"name": "pickup"})
    for name in ("BlobSource", "SftpSource", "StorageQueueSource", "ServiceBusSource", "HttpPollSource"):
        expected["components"]["schemas"][name] = schemas[name]
    for name in ("PickupStatus", "PickupOutcome"):
        expected["components"]["schemas"][name] = schemas[name]
    for name in ("IntegrationConfig", "IntegrationConfigBody"):
        source = schemas[name]["properties"]["source"]
        assert {ref["$ref"].rsplit("/", 1)[1] for ref in source["anyOf"][0]["oneOf"]} == {
            "BlobSource", "SftpSource", "StorageQueueSource", "ServiceBusSource", "HttpPollSource"
        } and source["anyOf"][1] == {"type": "null"} and source["default"] is None  # fmt: skip
        expected["components"]["schemas"][name]["properties"]["source"] = source
    expected["components"]["schemas"]["FailureOrigin"]["enum"].append("pickup")
    # 6. Issue 18, control: pause, resume and the status under their own tag; `circuit_breaker` and
    #    `rate_limit` on the config; a config as read (and listed) shows `paused`.
    control_paths = [path for path in generated["paths"] if path.endswith(("/pause", "/resume", "/control"))]
    assert len(control_paths) == 3
    expected["paths"].update({path: generated["paths"][path] for path in control_paths})
    expected["tags"].insert(expected["tags"].index({"name": "integrations"}) + 1, {"name": "control"})
    for name in (
        "PauseRequest", "PauseInfo", "ControlStatus", "BreakerStatus", "BreakerPhase", "CircuitBreakerPolicy",
        "RateLimitPolicy", "IntegrationView",
    ):  # fmt: skip
        expected["components"]["schemas"][name] = schemas[name]
    for name in ("IntegrationConfig", "IntegrationConfigBody"):
        for field in ("circuit_breaker", "rate_limit"):
            expected["components"]["schemas"][name]["properties"][field] = schemas[name]["properties"][field]
    put_integration = expected["paths"]["/integrations/{integration}"]["put"]
    put_integration["requestBody"]["description"] += "; `paused` (as GET shows it) is ignored"
    get_integration = expected["paths"]["/integrations/{integration}"]["get"]
    get_integration["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/IntegrationView"
    }
    expected["components"]["schemas"]["IntegrationList"]["properties"]["items"]["items"] = {
        "$ref": "#/components/schemas/IntegrationView"
    }
    #    The overview lists OverviewItem (a summary and its `held`), the metrics their `held` per integration.
    expected["components"]["schemas"].pop("FailureSummary")
    expected["components"]["schemas"]["OverviewItem"] = schemas["OverviewItem"]
    expected["components"]["schemas"]["FailureOverview"] = schemas["FailureOverview"]
    expected["components"]["schemas"]["MetricsSnapshot"]["properties"]["held"] = schemas["MetricsSnapshot"][
        "properties"
    ]["held"]
    # 7. Issue 18, alerts: the rule routes, the alert list, "send test alert", under their own tag, and
    #    their models.
    alert_paths = [path for path in generated["paths"] if path.startswith(("/alert-rules", "/alerts"))]
    assert sorted(alert_paths) == ["/alert-rules", "/alert-rules/{rule_id}", "/alert-rules/{rule_id}/test", "/alerts"]
    expected["paths"].update({path: generated["paths"][path] for path in alert_paths})
    expected["tags"].insert(expected["tags"].index({"name": "operability"}), {"name": "alerts"})
    for name in (
        "AlertRule", "AlertRuleBody", "AlertKind", "WebhookChannel", "TeamsChannel", "EmailChannel", "RuleState",
        "RuleView", "RuleList", "Alert", "AlertList", "AlertSample", "NoticeStatus",
    ):  # fmt: skip
        expected["components"]["schemas"][name] = schemas[name]
    # 8. Issue 15, inbound shards: a queue of recovery material may be a retired shard (INBOUND_SHARDS lowered).
    kind = schemas["RecoveryQueueStatus"]["properties"]["kind"]
    assert kind["enum"] == ["recovery", "poison", "retired"]
    expected["components"]["schemas"]["RecoveryQueueStatus"]["properties"]["kind"] = kind
    # 9. Issue 17, timeline: a message's events (under `failures`); issue 19: a retry job's settle counters.
    timeline_path = "/integrations/{integration}/messages/{message_id}/timeline"
    expected["paths"][timeline_path] = generated["paths"][timeline_path]
    for name in ("Timeline", "TimelineItem", "TimelineEvent"):
        expected["components"]["schemas"][name] = schemas[name]
    for field in ("resent", "delivered", "failed_again", "pending"):
        expected["components"]["schemas"]["Job"]["properties"][field] = schemas["Job"]["properties"][field]
    # 10. Issue 19, operator tools: facets, export, edit-and-retry, mute and unmute; the id filters, the content
    #    search and `stopped_early` on the list; groups carry `muted`; a job may carry a `target`.
    tool_paths = [
        path for path in generated["paths"]
        if path.endswith(("/facets", "/export", "/edit-retry", "/mute", "/unmute"))
    ]  # fmt: skip
    assert len(tool_paths) == 5
    expected["paths"].update({path: generated["paths"][path] for path in tool_paths})
    for path in (
        "/failures", "/integrations/{integration}/failures", "/integrations/{integration}/failures/count",
        "/integrations/{integration}/failure-groups", "/integrations/{integration}/jobs",
    ):  # fmt: skip
        expected["paths"][path] = generated["paths"][path]
    for name in (
        "FailureList", "FailureGroup", "GroupMute", "MuteRequest", "EditRetryRequest", "EditRetryAccepted",
        "Unmuted", "Facets", "Job", "JobRequest", "FailureFilter", "HttpEndpoint", "StorageQueueEndpoint",
        "ServiceBusEndpoint",
    ):  # fmt: skip
        expected["components"]["schemas"][name] = schemas[name]
    # 11. Issue 19, portal: the recovery status names what storage did not answer for (`unknown`), so a reader
    #    does not take a missing queue or sweep for "nothing waiting" or "never swept".
    recovery_status = expected["components"]["schemas"]["RecoveryStatus"]["properties"]
    recovery_status["unknown"] = schemas["RecoveryStatus"]["properties"]["unknown"]
    expected["components"]["schemas"] = dict(sorted(expected["components"]["schemas"].items()))

    # Then the generated document is exactly that
    assert generated == expected


def without_issue_17_additions(document: dict[str, Any]) -> dict[str, Any]:
    generated: dict[str, Any] = json.loads(json.dumps(document))
    for path, item in list(generated["paths"].items()):
        for method, operation in list(item.items()):
            if operation["operationId"] in NEW_OPERATIONS:
                del item[method]
        if not item:
            del generated["paths"][path]
    for name in NEW_SCHEMAS:
        generated["components"]["schemas"].pop(name)
    generated["components"]["schemas"]["Job"]["properties"].pop("created_by")
    generated["tags"] = [tag for tag in generated["tags"] if tag["name"] not in ("identity", "audit")]
    return generated


def with_issue_17_security(expected: dict[str, Any], generated: dict[str, Any]) -> None:
    """Each operation's security as its kind takes it, listing its role; 401/403 as the error envelope of the
    routes that name their caller; the page and DESIGN.md's ingest route describing sign-in and the senders' route."""
    schemes = list(SECURITY_SCHEMES)
    for _, _, operation in operations(expected):
        name = operation["operationId"]
        now = generated_operation(generated, name)
        if "security" in operation:
            role = ROLES.get(name, Role.READER)
            kinds = ["functionKeyHeader", "functionKeyQuery"] if name in INGEST_OPERATIONS else schemes
            operation["security"] = [{scheme: [role.value] if role else []} for scheme in kinds]
            if name not in INGEST_OPERATIONS:
                operation["responses"]["401"] = now["responses"]["401"]
            if role is not None:
                operation["responses"]["403"] = now["responses"]["403"]
        if name in ("portal", "ingest_message"):
            operation["summary"], operation["description"] = now["summary"], now["description"]


def generated_operation(document: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [operation for _, _, operation in operations(document) if operation["operationId"] == name]
    return found


async def test_the_handler_serves_the_document_as_json():
    # Given a GET without a key (the route is anonymous)
    request = func.HttpRequest("GET", "http://localhost/api/openapi.json", body=b"")

    # When the handler answers
    response = await operability.openapi_document(request)

    # Then it is the document, as JSON
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body()) == json.loads(json.dumps(api_document()))


def test_document_passes_the_openapi_3_1_validator():
    from openapi_spec_validator import validate

    validate(api_document())


def test_every_id_in_a_path_carries_the_pattern_the_route_checks(document):
    # The handlers refuse ids with blueprints.http.route_id; the document must say the same.
    from blueprints.http import CONFIG_ID, FAILURE_GROUP, FAILURES_INTEGRATION, RECORD_ID
    from blueprints.timeline import MESSAGE_ID

    expected = {
        "failure_id": RECORD_ID.pattern,
        "job_id": RECORD_ID.pattern,
        "rule_id": CONFIG_ID.pattern,
        "group": FAILURE_GROUP.pattern,
        "message_id": MESSAGE_ID.pattern,
    }
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path" or parameter["name"] == "asset":
                    continue
                name = parameter["name"]
                config_route = path in ("/integrations/{integration}", "/ingest/{integration}") or path.endswith(
                    ("/messages", "/pickup", "/run", "/pause", "/resume", "/control")
                )
                shape = (CONFIG_ID if config_route else FAILURES_INTEGRATION).pattern
                assert parameter["schema"]["pattern"] == expected.get(name, shape), f"{method} {path} {name}"


def test_the_contract_requires_the_endpoint_kind_and_exactly_one_job_selection(document):
    schemas = document["components"]["schemas"]
    for variant in ("HttpEndpoint", "StorageQueueEndpoint", "ServiceBusEndpoint"):
        assert "kind" in schemas[variant]["required"]
    assert len(schemas["JobSelection"]["oneOf"]) == 3
