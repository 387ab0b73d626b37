"""Who is calling: `GET /api/me`, for the portal to show who is signed in and what they may do."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import HttpApi, Reply
from blueprints.http import json_response, query_params
from blueprints.schemas import BAD_PARAMETER, SignedIn
from shared.auth import Principal, RouteKind

bp = func.Blueprint()
api = HttpApi(bp, tag="identity")


# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.
@api.route(
    "me", "me", "GET", kind=RouteKind.SIGNED_IN, role=None,
    summary="Who is calling, and with which roles",
    description="Any signed-in caller, with or without a role (the portal then says what is missing).",
    responses={200: Reply("the caller", SignedIn), 400: BAD_PARAMETER},
)  # fmt: skip
async def me(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    query_params(req)
    roles = sorted(caller.roles, key=lambda role: role.rank)
    return json_response(SignedIn(name=caller.name, id=caller.id, auth=caller.auth, roles=roles))
