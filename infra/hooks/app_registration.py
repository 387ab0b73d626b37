"""azd hooks: the Entra ID app registration App Service Authentication signs callers in with.

    python infra/hooks/app_registration.py preprovision    (azure.yaml runs it before `azd provision`)
    python infra/hooks/app_registration.py postprovision   (azure.yaml runs it after)
    python infra/hooks/app_registration.py grant --role Rebound.Operator --user ada@contoso.example
    python infra/hooks/app_registration.py grant --role Rebound.Reader --client-id <automation client id>

preprovision creates or updates the app registration `rebound-<azd env name>`: the app roles
Rebound.Reader, Rebound.Operator and Rebound.Admin for users *and* applications (automation clients
get them in client-credential tokens), ID tokens for browser sign-in, v2 access tokens, and a service
principal on which role assignment is required (no role, no token). It stores the client id in the
azd environment as AZURE_AUTH_CLIENT_ID, which main.parameters.json passes to main.bicep
(`authClientId`).
postprovision adds the Function App's sign-in redirect URI, known only once the app exists (Flex
Consumption host names carry a random part). grant gives a user, group, or application a role.

Hooks rather than the Bicep Microsoft Graph extension because `make infra-check` must scan every
template: checkov 3.3.30 (the latest) parses Bicep with pycep-parser 0.5.1, which cannot parse
`extension microsoftGraphV1`, and a template checkov cannot parse goes unscanned.

Needs Python 3.11 (standard library only) and the Azure CLI logged in to the tenant (`az login`), as
someone who may create app registrations (and, for grant, assign app roles). Microsoft Graph is
called through `az rest`; nothing here holds or prints a secret (the registration has none).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

GRAPH = "https://graph.microsoft.com/v1.0"
CLIENT_ID_VARIABLE = "AZURE_AUTH_CLIENT_ID"
#: Role ids must stay the same across runs (Graph refuses to change an enabled role's id): derived.
_ROLE_NAMESPACE = uuid.UUID("5f1f2ad4-27a4-4f0e-9a55-4b3c1c1f6a7e")
ROLES = (
    ("Rebound.Reader", "Reader", "Read integrations, failures, jobs, recovery, metrics and the audit trail."),
    ("Rebound.Operator", "Operator", "Reader, plus start and cancel retry/delete jobs and replay recovery."),
    ("Rebound.Admin", "Admin", "Operator, plus create, change and delete integration configs and settings."),
)
#: Seconds to wait for a new registration to become visible to the service principal call.
REPLICATION_WAIT_S = 60


class GraphError(RuntimeError):
    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


class Graph:
    """Microsoft Graph through `az rest` (the CLI's own login and token)."""

    def __init__(self, run: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None) -> None:
        self._run = run or _run

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        command = ["az", "rest", "--method", method, "--url", f"{GRAPH}{path}", "--output", "json"]
        if body is not None:
            command += ["--headers", "Content-Type=application/json", "--body", json.dumps(body)]
        result = self._run(command)
        if result.returncode != 0:
            error = result.stderr.strip()
            not_found = "Not Found" in error or "Request_ResourceNotFound" in error or "does not exist" in error
            raise GraphError(f"az rest {method} {path}: {error}", not_found=not_found)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Mapping[str, Any]) -> None:
        self.request("PATCH", path, body)


def _az() -> str:
    found = shutil.which("az")
    if found is None:
        raise SystemExit("the Azure CLI (az) is not on PATH: install it and run `az login`")
    return found


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    # The full path: on Windows `az` is az.cmd, which subprocess finds only by its whole name.
    return subprocess.run([_az(), *command[1:]], capture_output=True, text=True, check=False)


def role_id(value: str) -> str:
    return str(uuid.uuid5(_ROLE_NAMESPACE, value))


def app_roles() -> list[dict[str, Any]]:
    return [
        {
            "id": role_id(value),
            "value": value,
            "displayName": display_name,
            "description": description,
            "allowedMemberTypes": ["User", "Application"],
            "isEnabled": True,
        }
        for value, display_name, description in ROLES
    ]


def display_name(env_name: str) -> str:
    return f"rebound-{env_name}"


def env_tag(env_name: str) -> str:
    """Marks the registration as this azd environment's, so a second machine finds it instead of adding one."""
    return f"rebound-azd-env:{env_name}"


def merged_roles(existing: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Ours replace theirs by id; roles someone else added stay (Graph refuses to drop an enabled role)."""
    ours = app_roles()
    ids = {role["id"] for role in ours}
    return [*(dict(role) for role in existing if role.get("id") not in ids), *ours]


def web_settings(existing: Mapping[str, Any] | None, *, add_redirect_uri: str | None = None) -> dict[str, Any]:
    """The registration's `web` with ID tokens on (browser sign-in without a secret); PATCH replaces `web`
    as a whole, so every redirect URI already there is kept."""
    web = dict(existing or {})
    uris = list(web.get("redirectUris") or [])
    if add_redirect_uri and add_redirect_uri not in uris:
        uris.append(add_redirect_uri)
    web["redirectUris"] = uris
    grant = dict(web.get("implicitGrantSettings") or {})
    grant.update({"enableIdTokenIssuance": True, "enableAccessTokenIssuance": False})
    web["implicitGrantSettings"] = grant
    return web


def redirect_uri(service_uri: str) -> str:
    if not re.match(r"^https://[^/\s]+/?$", service_uri):
        raise SystemExit(f"SERVICE_API_URI {service_uri!r} is not https://<host>: run azd provision first")
    return f"{service_uri.rstrip('/')}/.auth/login/aad/callback"


def find_application(graph: Graph, env: Mapping[str, str]) -> dict[str, Any] | None:
    env_name = env["AZURE_ENV_NAME"]
    client_id = env.get(CLIENT_ID_VARIABLE, "").strip()
    if client_id:
        try:
            application: dict[str, Any] = graph.get(f"/applications(appId='{client_id}')")
        except GraphError as error:
            if error.not_found:
                raise SystemExit(
                    f"{CLIENT_ID_VARIABLE}={client_id} names no app registration in this tenant; "
                    f"unset it (azd env set {CLIENT_ID_VARIABLE} '') to have one created"
                ) from None
            raise
        return application
    name = display_name(env_name)
    found = graph.get(f"/applications?$filter=displayName eq '{name}'")["value"]
    ours = [app for app in found if env_tag(env_name) in (app.get("tags") or [])]
    if len(ours) > 1:
        ids = ", ".join(app["appId"] for app in ours)
        raise SystemExit(f"several app registrations are tagged {env_tag(env_name)} ({ids}): set {CLIENT_ID_VARIABLE}")
    return ours[0] if ours else None


def preprovision(graph: Graph, env: Mapping[str, str], set_env: Callable[[str, str], None]) -> str:
    """Create or update the registration and its service principal; returns the client id."""
    env_name = env["AZURE_ENV_NAME"]
    application = find_application(graph, env)
    if application is None:
        application = graph.post(
            "/applications",
            {
                "displayName": display_name(env_name),
                "signInAudience": "AzureADMyOrg",
                "tags": [env_tag(env_name)],
                "appRoles": app_roles(),
                "api": {"requestedAccessTokenVersion": 2},
                "web": web_settings(None),
            },
        )
        print(f"created app registration {display_name(env_name)} ({application['appId']})")
    client_id = application["appId"]
    uris = list(application.get("identifierUris") or [])
    changes = {
        "appRoles": merged_roles(application.get("appRoles") or []),
        "api": {**(application.get("api") or {}), "requestedAccessTokenVersion": 2},
        "web": web_settings(application.get("web")),
        "identifierUris": uris if f"api://{client_id}" in uris else [*uris, f"api://{client_id}"],
    }
    # A registration created a moment ago may answer 404 until it has replicated.
    until_replicated(lambda: graph.patch(f"/applications/{application['id']}", changes))
    ensure_service_principal(graph, client_id)
    set_env(CLIENT_ID_VARIABLE, client_id)
    print(f"app registration {client_id}: app roles {', '.join(value for value, _, _ in ROLES)} ready")
    return client_id


def until_replicated(action: Callable[[], Any], *, wait_s: float = REPLICATION_WAIT_S) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return action()
        except GraphError as error:
            if not error.not_found or time.monotonic() > deadline:
                raise
            time.sleep(5)


def ensure_service_principal(graph: Graph, client_id: str, *, wait_s: float = REPLICATION_WAIT_S) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            principal: dict[str, Any] = graph.get(f"/servicePrincipals(appId='{client_id}')")
            break
        except GraphError as error:
            if not error.not_found:
                raise
        try:
            created: dict[str, Any] = graph.post(
                "/servicePrincipals", {"appId": client_id, "appRoleAssignmentRequired": True}
            )
            return created
        except GraphError:
            # A registration created seconds ago may not have replicated yet.
            if time.monotonic() > deadline:
                raise
            time.sleep(5)
    if not principal.get("appRoleAssignmentRequired"):
        graph.patch(f"/servicePrincipals/{principal['id']}", {"appRoleAssignmentRequired": True})
    return principal


def postprovision(graph: Graph, env: Mapping[str, str]) -> str:
    """Add https://<app host>/.auth/login/aad/callback to the registration's redirect URIs."""
    uri = redirect_uri(env.get("SERVICE_API_URI", ""))
    client_id = env.get(CLIENT_ID_VARIABLE, "").strip()
    if not client_id:
        raise SystemExit(f"{CLIENT_ID_VARIABLE} is not set: the preprovision hook did not run")
    application = graph.get(f"/applications(appId='{client_id}')")
    if uri not in ((application.get("web") or {}).get("redirectUris") or []):
        web = web_settings(application.get("web"), add_redirect_uri=uri)
        graph.patch(f"/applications/{application['id']}", {"web": web})
    print(f"sign-in redirect URI {uri} registered")
    return uri


def grant(
    graph: Graph,
    app_client_id: str,
    role: str,
    *,
    user: str | None = None,
    client_id: str | None = None,
    object_id: str | None = None,
) -> None:
    """Assign `role` to a user (UPN or object id), an application (client id), or any principal object id."""
    if role not in {value for value, _, _ in ROLES}:
        raise SystemExit(f"unknown role {role!r}: one of {', '.join(value for value, _, _ in ROLES)}")
    resource = graph.get(f"/servicePrincipals(appId='{app_client_id}')")
    if user:
        principal_id = graph.get(f"/users/{quote(user, safe='@')}")["id"]
    elif client_id:
        principal_id = graph.get(f"/servicePrincipals(appId='{client_id}')")["id"]
    elif object_id:
        principal_id = object_id
    else:
        raise SystemExit("say whom: --user, --client-id or --object-id")
    try:
        graph.post(
            f"/servicePrincipals/{resource['id']}/appRoleAssignedTo",
            {"principalId": principal_id, "resourceId": resource["id"], "appRoleId": role_id(role)},
        )
    except GraphError as error:
        if "already exists" not in str(error):
            raise
    print(f"{user or client_id or object_id} holds {role}")


def azd_env_set(name: str, value: str) -> None:
    azd = shutil.which("azd")
    if azd is None:
        raise SystemExit(f"azd is not on PATH: set {name}={value} in the azd environment yourself")
    subprocess.run([azd, "env", "set", name, value], check=True)


def azd_env_get(name: str) -> str:
    """A value of the current azd environment ('' when azd or the value is missing)."""
    azd = shutil.which("azd")
    if azd is None:
        return ""
    result = subprocess.run([azd, "env", "get-value", name], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app_registration.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("preprovision")
    commands.add_parser("postprovision")
    grant_parser = commands.add_parser("grant")
    grant_parser.add_argument("--role", required=True)
    whom = grant_parser.add_mutually_exclusive_group(required=True)
    whom.add_argument("--user", help="user principal name or object id")
    whom.add_argument("--client-id", help="application (client) id of an automation client or managed identity")
    whom.add_argument("--object-id", help="object id of a user, group or service principal")
    args = parser.parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    graph = Graph()
    if args.command == "grant":
        app_client_id = env.get(CLIENT_ID_VARIABLE, "").strip() or azd_env_get(CLIENT_ID_VARIABLE)
        if not app_client_id:
            raise SystemExit(f"{CLIENT_ID_VARIABLE} is not set: run azd provision first, in this azd environment")
        grant(graph, app_client_id, args.role, user=args.user, client_id=args.client_id, object_id=args.object_id)
        return 0
    if not env.get("AZURE_ENV_NAME"):
        raise SystemExit("AZURE_ENV_NAME is not set: azure.yaml runs this hook through azd (azd hooks run ...)")
    if args.command == "preprovision":
        preprovision(graph, env, azd_env_set)
    else:
        postprovision(graph, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
