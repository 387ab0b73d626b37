"""HTTP routes declared once: `HttpApi.route(...)` registers the function and records its OpenAPI operation.

One call states what `@bp.function_name` and `@bp.route` receive (name, route, method, auth
level) together with who may call it (route kind, role) and what goes in and out (parameters,
body, answers as pydantic models). blueprints/openapi.py builds the document from the recorded
operations, so there is no second route table to fall out of step with the app.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import azure.functions as func
from pydantic import BaseModel

from blueprints.http import JSON, Handler, handles_errors
from shared.auth import AuthMode, HttpAuthLevel, Role, RouteKind, auth_mode_from_environ, http_auth_level

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
    #: The role issue 17 requires of a signed-in caller; None on public and ingest routes.
    role: Role | None
    #: What the Functions host checks before the handler runs.
    auth_level: HttpAuthLevel
    description: str = ""
    #: Takes the failure filters as query parameters; `paged` adds limit and cursor.
    filtered: bool = False
    paged: bool = False
    #: Documents the generic error answer as `default` (not for answers that never fail).
    default_error: bool = True


#: The app checks the caller's role itself (issue 17's next part: `authenticate` and `require` in
#: `_checked`). Until it does, "api" routes keep the function key in every mode. `http_auth_level`
#: makes them anonymous in `entra` and `dev` because the app is meant to check the principal; doing
#: that before the check exists would open an Azure app to every signed-in user whatever their role,
#: and to everyone wherever App Service Authentication is off (it is the code default's mode).
ROLES_CHECKED = False

#: Read once, when the worker imports the app: app settings are environment variables by then.
AUTH_MODE = auth_mode_from_environ(os.environ)


def functions_auth_level(kind: RouteKind, mode: AuthMode | None) -> HttpAuthLevel:
    """The level the Functions host enforces for a route of this kind, with the app's checks as they are."""
    if kind is RouteKind.API and not ROLES_CHECKED:
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
    ) -> Callable[[Handler], Any]:
        """Register the handler as Functions function `name` at `route`, wrapped in the one error mapper."""
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

        def register(handler: Handler) -> Any:
            self.operations.append(operation)
            routed = self.bp.route(route=route, methods=[method], auth_level=func.AuthLevel(level.value))
            return self.bp.function_name(name)(routed(_checked(handler, operation)))

        return register


def _checked(handler: Handler, operation: Operation) -> Handler:
    """The handler as the host calls it: inside the error mapper, so every refusal gets the error envelope.

    This is where issue 17's next part checks the caller of an "api" route, before the handler:
    `require(authenticate(mode, req.headers, os.environ), operation.role)`, and then sets
    `ROLES_CHECKED`. Until then the Functions key guards those routes and roles are only documented.
    """
    return handles_errors(handler)
