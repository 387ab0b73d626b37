"""infra/: App Service Authentication in front of the app, and the paths it lets through unauthenticated.

The excluded paths are checked against the routes the app registers (function_app.app.get_functions(),
with host.json's route prefix, and each route's declared kind), matched the way the excludedPaths
documentation and Microsoft's answers describe them: an exact path, or a prefix ending in `/*`. Nothing
more is assumed of the platform.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import azure.functions as func
import pytest
from azure.functions.decorators.http import HttpTrigger

from blueprints.operability import registered_operations
from devhost.host_config import load_host_config
from devhost.routes import LiteralSegment, RouteMatch, RouteTable, RouteTemplate
from shared.auth import AuthMode, RouteKind
from tests.unit.test_infra_settings import (
    INFRA,
    MAIN,
    SHAPES,
    Scope,
    bicep_app_settings,
    bicep_environment,
    body,
    evaluate,
    parse,
    registered_functions,
)

ROOT = INFRA.parent
EASY_AUTH = INFRA / "modules" / "easy-auth.bicep"
#: The senders' route, let through App Service Authentication.
SENDERS_FUNCTION = "ingest"


@cache
def http_functions() -> dict[str, Any]:
    """Function name → function, for every HTTP-triggered function of the app."""
    return {
        function.get_function_name(): function
        for function in registered_functions()
        if isinstance(function.get_trigger(), HttpTrigger)
    }


def functions_of(kind: RouteKind) -> set[str]:
    """The app's routes of one kind, as declared (public: health, OpenAPI, the portal's page, files and config)."""
    return {operation.name for operation in registered_operations() if operation.kind is kind}


def public_functions() -> set[str]:
    return functions_of(RouteKind.PUBLIC)


def level_of(name: str) -> func.AuthLevel:
    level = http_functions()[name].get_trigger().auth_level
    return func.AuthLevel(str(getattr(level, "value", level)).lower())


def route_table(names: set[str] | None = None) -> RouteTable[str]:
    table: RouteTable[str] = RouteTable(load_host_config(ROOT).http.route_prefix)
    for name, function in http_functions().items():
        if names is None or name in names:
            trigger = function.get_trigger()
            table.add(trigger.route, [str(m.value if hasattr(m, "value") else m) for m in trigger.methods or []], name)
    return table


def served_by(path: str, method: str = "GET") -> str | None:
    resolved = route_table().resolve(path, method)
    return resolved.route.target if isinstance(resolved, RouteMatch) else None


def excluded_paths(**params: Any) -> list[str]:
    """The excludedPaths main.bicep gives the easyAuth module, with these parameter values."""
    scope = Scope(MAIN, params=params)
    expression = body(parse(MAIN)["modules"]["easyAuth"])["params"]["excludedPaths"]
    return _array(expression, scope)


def _array(expression: Any, scope: Scope) -> list[str]:
    if isinstance(expression, dict) and "function" in expression:
        assert expression["function"]["type"] == "concat", expression
        return [item for argument in expression["function"]["parameters"].values() for item in _array(argument, scope)]
    if isinstance(expression, str) and expression in scope.variables():
        value = scope.variables()[expression]["value"]
        if isinstance(value, dict) and "loop_type" in value:
            loop = value["loop_type"]["detail"]
            items = evaluate(loop["array_name"], scope)
            assert isinstance(items, list), loop
            return [
                evaluate(value["config"], Scope(MAIN, scope.params, loop={loop["item_name"]: item})) for item in items
            ]
        return _array(value, scope)
    result = evaluate(expression, scope)
    assert isinstance(result, list), expression
    return result


def matches(excluded: str, path: str) -> bool:
    """The documented matching: the exact path, or anything under a prefix ending in /*."""
    if excluded.endswith("/*"):
        return path.startswith(excluded[:-1])
    return path == excluded


def _could_be(segment: Any, literal: str) -> bool:
    """Whether a route segment can match this literal path segment (a parameter can match anything)."""
    return not isinstance(segment, LiteralSegment) or segment.text.lower() == literal.lower()


def auth_settings() -> dict[str, Any]:
    resource = parse(EASY_AUTH)["resources"]["authSettings"]
    assert resource["type"] == "Microsoft.Web/sites/config"
    config: dict[str, Any] = body(resource)
    return config


# The excluded paths against the app's routes


def test_every_excluded_path_is_exact_or_a_trailing_wildcard():
    # Then: no wildcard the platform does not document (e.g. /api/integrations/*/messages)
    for path in excluded_paths():
        assert path.startswith("/"), path
        assert "*" not in path.removesuffix("/*"), f"{path}: only a trailing /* is a documented wildcard"


def test_the_excluded_paths_match_the_senders_ingest_route_and_health_as_registered():
    # Given
    paths = excluded_paths()

    # Then: health is let through, and the senders' route for any integration, to the functions that serve them
    assert [p for p in paths if matches(p, "/api/health")] == ["/api/health"]
    assert served_by("/api/health") == "health"
    for integration in ("orders", "erp-2", "_unknown"):
        path = f"/api/ingest/{integration}"
        assert any(matches(p, path) for p in paths), path
        assert served_by(path, "POST") == SENDERS_FUNCTION
    # And the senders' route keeps the function key, whatever the mode the app was loaded in
    assert level_of(SENDERS_FUNCTION) == func.AuthLevel.FUNCTION


def test_designs_ingest_route_stays_behind_sign_in():
    # Then: /api/integrations/{id}/messages is never let through unauthenticated (a signed-in caller with the key)
    assert not any(matches(p, "/api/integrations/orders/messages") for p in excluded_paths())
    assert served_by("/api/integrations/orders/messages", "POST") == "ingest_message"


def test_every_exact_excluded_path_is_served_by_a_public_route_or_ingest():
    # Given
    allowed = public_functions() | functions_of(RouteKind.INGEST)

    for path in excluded_paths():
        if path.endswith("/*"):
            continue
        # Then: whatever method a caller uses, only a public route or ingest answers that path
        served = {served_by(path, method) for method in ("GET", "POST", "PUT", "DELETE", "PATCH")} - {None}
        assert served, f"{path} is served by no function"
        assert served <= allowed, f"{path} also reaches {served - allowed}"


def test_no_route_that_needs_a_sign_in_lies_under_a_wildcard_excluded_path():
    # Given
    prefix = load_host_config(ROOT).http.route_prefix
    wildcards = [p for p in excluded_paths() if p.endswith("/*")]
    assert wildcards == ["/api/portal/*", "/api/ingest/*"]
    let_through = public_functions() | functions_of(RouteKind.INGEST)

    for wildcard in wildcards:
        under = wildcard.removeprefix(f"/{prefix}/").removesuffix("/*").split("/")
        # Then: only public and ingest routes can match a path under it (a parameter segment could match anything)
        for name, function in http_functions().items():
            if name in let_through:
                continue
            segments = RouteTemplate.parse(function.get_trigger().route).segments
            could_match = all(
                index < len(segments) and _could_be(segments[index], part) for index, part in enumerate(under)
            )
            assert not could_match, f"{name} ({function.get_trigger().route}) lies under {wildcard}"
    # And the public files, the sign-in config and the senders' route are served there
    assert served_by("/api/portal/app.js") == "portal_asset"
    assert served_by("/api/portal/config") == "portal_config"
    assert served_by("/api/ingest/orders", "POST") == SENDERS_FUNCTION


def test_every_public_route_is_let_through_and_nothing_else_but_ingest():
    # Given a path of each public route, and what the excluded paths let through
    samples = {"health": "/api/health", "openapi_document": "/api/openapi.json", "portal": "/api/portal"}
    samples |= {"portal_asset": "/api/portal/js/main.js", "portal_config": "/api/portal/config"}

    # Then every public route is let through at its path
    assert set(samples) == public_functions()
    for name, path in samples.items():
        assert served_by(path) == name
        assert any(matches(p, path) for p in excluded_paths()), path


# The authentication settings


def test_sign_in_is_required_everywhere_else_and_an_unauthenticated_call_gets_401():
    # When
    settings = auth_settings()
    properties = settings["properties"]

    # Then
    assert settings["name"] == "authsettingsV2"
    assert properties["platform"] == {"enabled": True}
    assert properties["globalValidation"]["requireAuthentication"] is True
    assert properties["globalValidation"]["unauthenticatedClientAction"] == "Return401"
    assert properties["globalValidation"]["excludedPaths"] == "excludedPaths"
    assert properties["httpSettings"]["requireHttps"] is True


def test_callers_sign_in_with_entra_id_of_this_tenant_and_no_secret_is_kept():
    # When
    entra = auth_settings()["properties"]["identityProviders"]["azureActiveDirectory"]
    login = auth_settings()["properties"]["login"]

    # Then
    assert entra["enabled"] is True
    assert entra["registration"]["clientId"] == "clientId"
    assert (
        entra["registration"]["openIdIssuer"]
        == "${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0"
    )
    assert "clientSecretSettingName" not in entra["registration"]
    assert entra["validation"]["allowedAudiences"] == ["clientId", "api://${clientId}"]
    assert login["tokenStore"] == {"enabled": False}
    assert login["allowedExternalRedirectUrls"] == []
    assert login["nonce"] == {"validateNonce": True}


def test_authentication_is_put_in_front_of_the_function_app_with_the_registration_azd_made():
    # Given
    module = body(parse(MAIN)["modules"]["easyAuth"])
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]

    # Then
    assert parse(MAIN)["modules"]["easyAuth"]["detail"]["path"] == "modules/easy-auth.bicep"
    assert module["params"]["clientId"] == "authClientId"
    assert "functionApp" in json.dumps(module["params"]["functionAppName"])
    assert parameters["authClientId"]["value"] == "${AZURE_AUTH_CLIENT_ID}"
    # No list of integrations to let through: the senders' route has a prefix of its own
    assert "httpIngestIntegrations" not in parameters and "httpIngestIntegrations" not in parse(MAIN)["parameters"]
    decorators = {d["type"]: d.get("argument") for d in parse(MAIN)["parameters"]["authClientId"]["decorators"]}
    assert decorators["min_length"] == decorators["max_length"] == 36


@pytest.mark.parametrize("params", SHAPES)
def test_azure_runs_in_entra_mode_and_never_fakes_the_platforms_signals(params):
    # When
    environ = bicep_environment(**params)

    # Then: entra is what the code reads
    assert environ["AUTH_MODE"] == AuthMode.ENTRA.value
    # And the signals the app trusts come from the platform or devhost, never from app settings
    assert "WEBSITE_AUTH_ENABLED" not in bicep_app_settings(**params)
    assert not [name for name in environ if name.startswith("DEVHOST_")]


def test_the_readme_documents_why_senders_have_a_route_of_their_own():
    # Then
    text = (INFRA / "README.md").read_text()
    assert "/api/ingest/*" in text
    assert "/api/integrations/*/messages" in text
    assert "REBOUND_HTTP_INGEST_INTEGRATIONS" not in text
