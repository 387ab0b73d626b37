"""`HttpApi.route`: one call registers the function and records its operation, with the auth level it gets,
and `_checked` names the caller of every "api" route and holds it to the route's role before the handler runs."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from blueprints import api as api_module
from blueprints.api import HttpApi, Operation, Param, Reply, functions_auth_level
from shared.auth import KEY_PRINCIPAL, AuthMode, HttpAuthLevel, Principal, Role, RouteKind, http_auth_level
from shared.errors import BadParameter
from tests.support.auth import as_devhost, principal_headers

MODES = [AuthMode.ENTRA, AuthMode.DEV, AuthMode.KEY, None]


def triggers(bp: func.Blueprint) -> dict[str, Any]:
    """Function name -> its HTTP trigger, as an app registering the blueprint sees them."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    return {str(f.get_function_name()): f.get_trigger() for f in app.get_functions()}


async def ok(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


async def ok_for(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    """A handler that names its caller back: what the route handed it."""
    return func.HttpResponse(json.dumps({"name": caller.name, "auth": caller.auth}), mimetype="application/json")


def routed(kind: RouteKind, role: Role | None, handler: Any = ok_for) -> Any:
    """One route of this kind and role, as the host would call it."""
    return HttpApi(func.Blueprint(), tag="t").route(
        "probe", "probe", "GET", kind=kind, role=role, summary="s", responses={}
    )(handler)


def get(headers: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("GET", "http://localhost/api/probe", body=b"", headers=headers or {})


def error_of(response: func.HttpResponse) -> dict[str, Any]:
    return dict(json.loads(response.get_body())["error"])


def test_one_call_registers_the_function_and_records_its_operation():
    # Given a surface with one catch-all route
    bp = func.Blueprint()
    api = HttpApi(bp, tag="files")
    asset = Param("asset", "path", "the file", required=True)

    # When a handler is declared on it
    api.route(
        "get_file", "files/{*asset}", "GET", kind=RouteKind.API, role=Role.READER,
        summary="A file", params=(asset,), responses={200: Reply("the file")},
    )(ok_for)  # fmt: skip

    # Then the app registers it under that name, route and method
    trigger = triggers(bp)["get_file"]
    assert (trigger.route, [str(m.value) for m in trigger.methods]) == ("files/{*asset}", ["GET"])
    # And the operation says the same, as OpenAPI writes it, with who may call it
    [operation] = api.operations
    assert isinstance(operation, Operation)
    assert (operation.name, operation.method, operation.path, operation.tag) == (
        "get_file",
        "get",
        "/files/{asset}",
        "files",
    )
    assert (operation.kind, operation.role, operation.params) == (RouteKind.API, Role.READER, (asset,))
    assert operation.responses == {"200": Reply("the file")}
    assert trigger.auth_level == func.AuthLevel(operation.auth_level.value)


async def test_the_handler_answers_inside_the_one_error_mapper():
    # Given a route whose handler refuses a parameter
    bp = func.Blueprint()

    async def refuses(req: func.HttpRequest) -> func.HttpResponse:
        raise BadParameter("limit", "must be an integer")

    handler = HttpApi(bp, tag="t").route(
        "refuses", "refuses", "GET", kind=RouteKind.PUBLIC, role=None, summary="s", responses={}
    )(refuses)

    # When it is called as the host calls it
    response = await handler(func.HttpRequest("GET", "http://localhost/api/refuses", body=b""))

    # Then the refusal is the error envelope naming the parameter
    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["details"] == {"parameter": "limit"}


@pytest.mark.parametrize(
    ("kind", "role"), [(RouteKind.API, None), (RouteKind.PUBLIC, Role.READER), (RouteKind.INGEST, Role.ADMIN)]
)
def test_a_route_is_refused_when_its_role_does_not_fit_its_kind(kind, role):
    # Given an "api" route without a role, or a public or ingest route with one
    api = HttpApi(func.Blueprint(), tag="t")

    # When it is declared / Then the declaration fails (at import, in every test run)
    with pytest.raises(ValueError, match="role"):
        api.route("bad", "bad", "GET", kind=kind, role=role, summary="s", responses={})


@pytest.mark.parametrize(
    ("kind", "handler"), [(RouteKind.API, ok), (RouteKind.SIGNED_IN, ok), (RouteKind.PUBLIC, ok_for)]
)
def test_a_handler_that_does_not_take_what_its_route_gives_is_refused(kind, handler):
    # When a route that names its caller gets a handler of the request alone, or a public one a caller's
    api = HttpApi(func.Blueprint(), tag="t")
    role = Role.READER if kind is RouteKind.API else None

    # Then the declaration fails at import
    with pytest.raises(ValueError, match="takes"):
        api.route("bad", "bad", "GET", kind=kind, role=role, summary="s", responses={})(handler)


def test_the_function_the_host_sees_takes_the_request_alone():
    # Given a route whose handler takes the caller too, registered in an app
    bp = func.Blueprint()
    HttpApi(bp, tag="t").route(
        "probe", "probe", "GET", kind=RouteKind.API, role=Role.READER, summary="s", responses={}
    )(ok_for)
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    [function] = app.get_functions()

    # Then the worker, which reads bindings off the signature, sees only `req`
    assert list(inspect.signature(function.get_user_function()).parameters) == ["req"]


@pytest.mark.parametrize("mode", MODES)
def test_with_roles_checked_the_levels_are_those_of_http_auth_level(mode):
    # Then every kind gets the level shared.auth gives it in this mode
    assert api_module.ROLES_CHECKED is True
    for kind in RouteKind:
        assert functions_auth_level(kind, mode) is http_auth_level(kind, mode)


@pytest.mark.parametrize("mode", MODES)
def test_without_roles_checked_routes_that_name_their_caller_would_keep_the_function_key(mode, monkeypatch):
    # Given the check switched off
    monkeypatch.setattr(api_module, "ROLES_CHECKED", False)

    # Then an anonymous "api" route could not open an app to everyone Easy Auth lets through
    assert functions_auth_level(RouteKind.API, mode) is HttpAuthLevel.FUNCTION
    assert functions_auth_level(RouteKind.SIGNED_IN, mode) is HttpAuthLevel.FUNCTION
    assert functions_auth_level(RouteKind.INGEST, mode) is HttpAuthLevel.FUNCTION
    assert functions_auth_level(RouteKind.PUBLIC, mode) is HttpAuthLevel.ANONYMOUS


@pytest.mark.parametrize(
    ("value", "api_level"),
    [("", "anonymous"), ("entra", "anonymous"), ("dev", "anonymous"), ("key", "function"), ("nonsense", "function")],
)
def test_the_auth_mode_is_read_from_the_environment_at_import(value, api_level, monkeypatch):
    # Given AUTH_MODE as the worker's environment has it (unset, each mode, unreadable)
    monkeypatch.setenv("AUTH_MODE", value)

    # When blueprints/api.py is imported afresh and declares one route of each kind
    spec = importlib.util.spec_from_file_location("_api_for_auth_test", Path(api_module.__file__))
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)  # dataclasses look their module up while it runs
    spec.loader.exec_module(fresh)
    bp = func.Blueprint()
    api = fresh.HttpApi(bp, tag="t")
    for kind, role in ((RouteKind.API, Role.ADMIN), (RouteKind.INGEST, None), (RouteKind.PUBLIC, None)):
        api.route(kind.value, kind.value, "GET", kind=kind, role=role, summary="s", responses={})(
            ok_for if kind is RouteKind.API else ok
        )

    # Then "api" routes are anonymous where Easy Auth (or devhost) stands in front, keyed otherwise;
    # ingest keeps its key and public routes are anonymous whatever the mode
    levels = {name: trigger.auth_level for name, trigger in triggers(bp).items()}
    assert levels == {
        "api": func.AuthLevel(api_level),
        "ingest": func.AuthLevel.FUNCTION,
        "public": func.AuthLevel.ANONYMOUS,
    }


# --- the caller check --------------------------------------------------------------------------


async def test_without_a_principal_an_api_route_answers_401_before_its_handler(monkeypatch):
    # Given the app loaded in dev mode under devhost
    as_devhost(monkeypatch)
    called = []

    async def handler(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
        called.append(caller)
        return func.HttpResponse("ok")

    # When an anonymous caller calls a Reader route
    response = await routed(RouteKind.API, Role.READER, handler)(get())

    # Then it is the 401 envelope, and the handler never ran
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert called == []


@pytest.mark.parametrize(
    ("held", "needed"),
    [((), Role.READER), ((Role.READER,), Role.OPERATOR), ((Role.OPERATOR,), Role.ADMIN), ((Role.READER,), Role.ADMIN)],
)
async def test_a_caller_without_the_role_gets_403_naming_it(held, needed, monkeypatch):
    # Given the app loaded in dev mode under devhost, and a signed-in caller holding `held`
    as_devhost(monkeypatch)

    # When the caller calls a route for `needed`
    response = await routed(RouteKind.API, needed)(get(principal_headers("ada", *held)))

    # Then it is 403 with the role it lacks
    assert response.status_code == 403
    error = error_of(response)
    assert (error["code"], error["details"]) == ("forbidden", {"required_role": needed.value})


@pytest.mark.parametrize(
    ("held", "needed"),
    [(Role.READER, Role.READER), (Role.OPERATOR, Role.READER), (Role.ADMIN, Role.OPERATOR), (Role.ADMIN, Role.ADMIN)],
)
async def test_a_caller_with_the_role_or_a_higher_one_reaches_the_handler_as_itself(held, needed, monkeypatch):
    # Given the app loaded in dev mode under devhost
    as_devhost(monkeypatch)

    # When a caller holding `held` calls a route for `needed`
    response = await routed(RouteKind.API, needed)(get(principal_headers("ada", held)))

    # Then the handler ran, and was told who called
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"name": "ada", "auth": "dev"}


async def test_a_signed_in_route_takes_a_caller_without_any_role_but_not_an_anonymous_one(monkeypatch):
    # Given the app loaded in dev mode under devhost
    as_devhost(monkeypatch)
    route = routed(RouteKind.SIGNED_IN, None)

    # When a caller without roles, then nobody, calls it
    signed_in = await route(get(principal_headers("newcomer")))
    anonymous = await route(get())

    # Then the first is answered, the second is 401
    assert signed_in.status_code == 200
    assert anonymous.status_code == 401


async def test_principal_headers_are_refused_in_dev_mode_outside_devhost(monkeypatch):
    # Given the app loaded in dev mode but not under devhost (no marker): nobody strips forged headers
    monkeypatch.setattr(api_module, "AUTH_MODE", AuthMode.DEV)
    monkeypatch.delenv("DEVHOST_EASY_AUTH", raising=False)

    # When a caller sends an admin's principal headers of its own making
    response = await routed(RouteKind.API, Role.READER)(get(principal_headers("mallory", Role.ADMIN)))

    # Then it is 401, saying why
    assert response.status_code == 401
    assert error_of(response)["details"] == {"reason": "not_devhost"}


async def test_entra_fails_closed_without_the_platforms_easy_auth_signal(monkeypatch):
    # Given the app loaded in entra mode where App Service Authentication is not on
    monkeypatch.setattr(api_module, "AUTH_MODE", AuthMode.ENTRA)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)

    # When a caller sends an admin's principal headers, on an "api" and on a "signed_in" route
    forged = principal_headers("mallory", Role.ADMIN)
    responses = [
        await routed(kind, role)(get(forged))
        for kind, role in ((RouteKind.API, Role.READER), (RouteKind.SIGNED_IN, None))
    ]

    # Then both are 401: without Easy Auth in front, the headers could come from anyone
    assert [response.status_code for response in responses] == [401, 401]
    assert {error_of(response)["details"]["reason"] for response in responses} == {"easy_auth_disabled"}


async def test_entra_with_easy_auth_on_takes_the_principal_it_injects(monkeypatch):
    # Given the app loaded in entra mode on App Service with authentication on
    monkeypatch.setattr(api_module, "AUTH_MODE", AuthMode.ENTRA)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")

    # When Easy Auth forwards an operator
    response = await routed(RouteKind.API, Role.OPERATOR)(get(principal_headers("ada", Role.OPERATOR)))

    # Then the handler is reached as that operator
    assert response.status_code == 200


async def test_in_key_mode_the_key_holder_is_an_admin_and_principal_headers_are_ignored(monkeypatch):
    # Given the app loaded in key mode (the host checked the function key before the handler)
    as_devhost(monkeypatch, AuthMode.KEY)

    # When the caller also sends a reader's principal headers, on an Admin route
    response = await routed(RouteKind.API, Role.ADMIN)(get(principal_headers("ada", Role.READER)))

    # Then the caller is the key holder, who holds every role
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"name": KEY_PRINCIPAL.name, "auth": "key"}


async def test_an_unknown_auth_mode_answers_500_and_never_the_handler(monkeypatch):
    # Given the app loaded with an AUTH_MODE the code does not know
    monkeypatch.setattr(api_module, "AUTH_MODE", None)

    # When anyone calls an "api" route
    response = await routed(RouteKind.API, Role.READER)(get(principal_headers("ada", Role.ADMIN)))

    # Then it is a configuration error
    assert response.status_code == 500
    assert error_of(response)["code"] == "config_error"
