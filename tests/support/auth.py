"""Callers for tests: an actor for service calls, and the principal headers Easy Auth (or devhost) injects.

In-process handler tests play the worker that loaded the app in dev mode under devhost (`as_devhost`)
and send the headers devhost would inject (`principal_headers`), so the handlers' caller check runs
exactly as in devhost, without devhost.
"""

from __future__ import annotations

import pytest

from blueprints import api
from shared.audit.models import Actor
from shared.auth import DEVHOST_MARKER, PRINCIPAL_HEADER, AuthMode, Role, encode_client_principal

#: Who the tests act as when they call a service that takes an actor.
TESTER = Actor(name="tester", id="tester", auth="test")
#: The dev users the e2e hosts define (DEVHOST_USERS): one per role, and one with none.
DEV_USERS = {
    "admin": [Role.ADMIN.value],
    "operator": [Role.OPERATOR.value],
    "reader": [Role.READER.value],
    "norole": [],
}


def principal_headers(name: str = "tester", *roles: Role) -> dict[str, str]:
    """`X-MS-CLIENT-PRINCIPAL` (+ -NAME, -ID, -IDP) for a dev user with these roles, as devhost injects them."""
    claims = [{"typ": "name", "val": name}, *({"typ": "roles", "val": role.value} for role in roles)]
    document = {"auth_typ": "dev", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return {
        PRINCIPAL_HEADER: encode_client_principal(document),
        f"{PRINCIPAL_HEADER}-NAME": name,
        f"{PRINCIPAL_HEADER}-ID": name,
        f"{PRINCIPAL_HEADER}-IDP": "dev",
    }


#: An admin's headers: for handler tests about something other than who may call.
ADMIN_HEADERS = principal_headers("admin", Role.ADMIN)


def as_devhost(monkeypatch: pytest.MonkeyPatch, mode: AuthMode = AuthMode.DEV) -> None:
    """Be the worker devhost started: the app loaded in `mode`, and (in dev) devhost's marker in the environment."""
    monkeypatch.setattr(api, "AUTH_MODE", mode)
    if mode is AuthMode.DEV:
        monkeypatch.setenv(DEVHOST_MARKER, "1")
    else:
        monkeypatch.delenv(DEVHOST_MARKER, raising=False)
