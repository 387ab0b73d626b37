"""`HttpApi.route`: one call registers the function and records its operation, with the auth level it gets."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from blueprints import api as api_module
from blueprints.api import HttpApi, Operation, Param, Reply, functions_auth_level
from shared.auth import AuthMode, HttpAuthLevel, Role, RouteKind, http_auth_level
from shared.errors import BadParameter

MODES = [AuthMode.ENTRA, AuthMode.DEV, AuthMode.KEY, None]


def triggers(bp: func.Blueprint) -> dict[str, Any]:
    """Function name -> its HTTP trigger, as an app registering the blueprint sees them."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(bp)
    return {str(f.get_function_name()): f.get_trigger() for f in app.get_functions()}


async def ok(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


def test_one_call_registers_the_function_and_records_its_operation():
    # Given a surface with one catch-all route
    bp = func.Blueprint()
    api = HttpApi(bp, tag="files")
    asset = Param("asset", "path", "the file", required=True)

    # When a handler is declared on it
    api.route(
        "get_file", "files/{*asset}", "GET", kind=RouteKind.API, role=Role.READER,
        summary="A file", params=(asset,), responses={200: Reply("the file")},
    )(ok)  # fmt: skip

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


@pytest.mark.parametrize("mode", MODES)
def test_until_the_app_checks_roles_api_routes_keep_the_function_key_in_every_mode(mode):
    # When / Then: an anonymous "api" route would be open to anyone Easy Auth lets through, or to all
    assert functions_auth_level(RouteKind.API, mode) is HttpAuthLevel.FUNCTION
    assert functions_auth_level(RouteKind.INGEST, mode) is HttpAuthLevel.FUNCTION
    assert functions_auth_level(RouteKind.PUBLIC, mode) is HttpAuthLevel.ANONYMOUS


@pytest.mark.parametrize("mode", MODES)
def test_once_the_app_checks_roles_the_levels_are_those_of_http_auth_level(mode, monkeypatch):
    # Given the app checks the principal and the role itself
    monkeypatch.setattr(api_module, "ROLES_CHECKED", True)

    # Then every kind gets the level shared.auth gives it in this mode
    for kind in RouteKind:
        assert functions_auth_level(kind, mode) is http_auth_level(kind, mode)


@pytest.mark.parametrize("value", ["", "entra", "dev", "key", "nonsense"])
def test_the_auth_mode_is_read_from_the_environment_at_import_and_api_routes_keep_the_key(value, monkeypatch):
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
        api.route(kind.value, kind.value, "GET", kind=kind, role=role, summary="s", responses={})(ok)

    # Then only the public route is anonymous
    levels = {name: trigger.auth_level for name, trigger in triggers(bp).items()}
    assert levels == {
        "api": func.AuthLevel.FUNCTION,
        "ingest": func.AuthLevel.FUNCTION,
        "public": func.AuthLevel.ANONYMOUS,
    }
