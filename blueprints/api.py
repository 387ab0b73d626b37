"""HTTP routes declared once: `HttpApi.route(...)` registers the function and records its OpenAPI operation.

One call states what `@bp.function_name` and `@bp.route` receive (name, route, method, auth
level) together with who may call it (route kind, role) and what goes in and out (parameters,
body, answers as pydantic models). blueprints/openapi.py builds the document from the recorded
operations, so there is no second route table to fall out of step with the app.

Who may call is enforced in one place, `_checked`: before the handler of an "api" or "signed_in"
route runs, the caller is named (`shared.auth.authenticate`) and must hold the route's role
(`require`); the handler receives that principal as its second argument, and passes it on to the
services as the acting `Actor`. Refusals are the error envelope: 401 `unauthenticated`, 403
`forbidden` with `details.required_role`.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import azure.functions as func
from pydantic import BaseModel

from blueprints.http import JSON, Handler, handles_errors
from shared.auth import (
    AuthMode,
    HttpAuthLevel,
    Principal,
    Role,
    RouteKind,
    auth_mode_from_environ,
    authenticate,
    http_auth_level,
    require,
)
from shared.errors import ConfigError

#: The handler of a route whose caller the app names ("api", "signed_in"): it gets the principal too.
CallerHandler = Callable[[func.HttpRequest, Principal], Awaitable[func.HttpResponse]]

Method = Literal["GET", "PUT", "POST", "DELETE"]


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
    #: For non-model content (HTML, static files, the document itself).
    schema: Mapping[str, Any] | None = None
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """One registered HTTP function as the OpenAPI document describes it."""

    #: The Functions function name, which is also the operationId.
    name: str
    method: str
    #: The route as an OpenAPI path template: `/portal/{asset}` for `portal/{*asset}`.
    path: str
    tag: str
    summary: str
    responses: Mapping[str, Reply]
    params: tuple[Param, ...]
    body: Body | None
    kind: RouteKind
    #: The role a caller must hold; None on public and ingest routes, and on "signed_in" ones (any caller).
    role: Role | None
    #: What the Functions host checks before the handler runs.
    auth_level: HttpAuthLevel
    description: str = ""
    #: Takes the failure filters as query parameters; `paged` adds limit and cursor.
    filtered: bool = False
    paged: bool = False
    #: Documents the generic error answer as `default` (not for answers that never fail).
    default_error: bool = True


#: The app checks the caller's role itself (`_checked`), so "api" routes take the level `http_auth_level`
#: gives them: anonymous at the Functions level in `entra` and `dev` (Easy Auth, or devhost, in front;
#: the app requires the principal), the function key in `key`. False would put the key back on them.
ROLES_CHECKED = True

#: Read once, when the worker imports the app (app settings are environment variables by then), and used
#: both for the auth levels and for the check in `_checked`, so the two can never disagree: a route left
#: anonymous for Easy Auth is never answered as if the host had checked a key. None: not a known mode.
AUTH_MODE = auth_mode_from_environ(os.environ)


def functions_auth_level(kind: RouteKind, mode: AuthMode | None) -> HttpAuthLevel:
    """The level the Functions host enforces for a route of this kind, with the app's checks as they are."""
    if kind.needs_principal and not ROLES_CHECKED:
        return HttpAuthLevel.FUNCTION
    return http_auth_level(kind, mode)


_TEMPLATE_PARAM = re.compile(r"\{([^}]+)\}")


def openapi_path(route: str) -> str:
    """`{id:int}`, `{id?}`, `{*rest}` → `{id}`, `{rest}`: OpenAPI templates carry names only."""
    return "/" + _TEMPLATE_PARAM.sub(lambda m: "{" + m.group(1).lstrip("*").split(":")[0].rstrip("?") + "}", route)


class HttpApi:
    """The HTTP functions of one Blueprint under one OpenAPI tag, and their operations."""

    def __init__(self, bp: func.Blueprint, *, tag: str) -> None:
        self.bp = bp
        self.tag = tag
        self.operations: list[Operation] = []

    def route(
        self,
        name: str,
        route: str,
        method: Method,
        *,
        kind: RouteKind,
        role: Role | None,
        summary: str,
        responses: Mapping[int, Reply],
        params: Sequence[Param] = (),
        body: Body | None = None,
        description: str = "",
        filtered: bool = False,
        paged: bool = False,
        default_error: bool = True,
    ) -> Callable[[Handler | CallerHandler], Any]:
        """Register the handler as Functions function `name` at `route`, wrapped in the caller check and the
        one error mapper. The handler of a route that names its caller takes `(req, caller)`, others `(req)`."""
        if (role is None) != (kind is not RouteKind.API):
            raise ValueError(f"{name}: an {RouteKind.API.value!r} route needs a role, and only such a route has one")
        level = functions_auth_level(kind, AUTH_MODE)
        operation = Operation(
            name=name,
            method=method.lower(),
            path=openapi_path(route),
            tag=self.tag,
            summary=summary,
            responses={str(status): reply for status, reply in responses.items()},
            params=tuple(params),
            body=body,
            kind=kind,
            role=role,
            auth_level=level,
            description=description,
            filtered=filtered,
            paged=paged,
            default_error=default_error,
        )

        def register(handler: Handler | CallerHandler) -> Any:
            takes = len(inspect.signature(handler).parameters)
            if takes != (2 if kind.needs_principal else 1):
                wanted = "(req, caller)" if kind.needs_principal else "(req)"
                raise ValueError(f"{name}: the handler of a {kind.value!r} route takes {wanted}")
            self.operations.append(operation)
            routed = self.bp.route(route=route, methods=[method], auth_level=func.AuthLevel(level.value))
            return self.bp.function_name(name)(routed(_checked(handler, operation)))

        return register


def caller_of(req: func.HttpRequest, operation: Operation) -> Principal:
    """The caller of a route that names it: authenticated in the mode the app was loaded in, holding the role.

    `Unauthenticated` (401) without a principal the app may trust, `Forbidden` (403) without the role;
    `ConfigError` (500) when AUTH_MODE is not a mode the code knows (its routes also kept the key).
    """
    mode = AUTH_MODE
    if mode is None:
        raise ConfigError("AUTH_MODE is not entra, dev or key; fix the app setting and restart")
    principal = authenticate(mode, req.headers, os.environ)
    if operation.role is not None:
        require(principal, operation.role)
    return principal


def _checked(handler: Handler | CallerHandler, operation: Operation) -> Handler:
    """The handler as the host calls it: its caller checked first where the route names one, and all of it
    inside the error mapper, so every refusal gets the error envelope.

    The function the host sees takes the request alone (the worker reads bindings off its signature):
    a handler that also takes the caller is called from a closure, not exposed through `__wrapped__`.
    """
    if not operation.kind.needs_principal:
        return handles_errors(cast(Handler, handler))
    with_caller = cast(CallerHandler, handler)

    async def checked(req: func.HttpRequest) -> func.HttpResponse:
        return await with_caller(req, caller_of(req, operation))

    checked.__name__ = checked.__qualname__ = getattr(handler, "__name__", operation.name)
    checked.__doc__ = handler.__doc__
    return handles_errors(checked)
