"""infra/hooks/app_registration.py against an in-memory Microsoft Graph (nothing here reaches Entra ID)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from shared.auth import Role

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "infra" / "hooks" / "app_registration.py"
ENV = {"AZURE_ENV_NAME": "rebound-dev"}


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("app_registration", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = load_hook()


class FakeGraph:
    """The few Graph calls the hook makes, on dicts; records every write."""

    def __init__(self) -> None:
        self.applications: dict[str, dict[str, Any]] = {}
        self.principals: dict[str, dict[str, Any]] = {}
        self.users = {"ada@contoso.example": {"id": "user-ada"}}
        self.assignments: list[dict[str, Any]] = []
        self.writes: list[tuple[str, str]] = []

    def get(self, path: str) -> Any:
        if match := re.fullmatch(r"/applications\(appId='(.+)'\)", path):
            return self._find(self.applications, match.group(1))
        if match := re.fullmatch(r"/servicePrincipals\(appId='(.+)'\)", path):
            return self._find(self.principals, match.group(1))
        if match := re.fullmatch(r"/applications\?\$filter=displayName eq '(.+)'", path):
            return {"value": [a for a in self.applications.values() if a["displayName"] == match.group(1)]}
        if match := re.fullmatch(r"/users/(.+)", path):
            if match.group(1) not in self.users:
                raise hook.GraphError("Not Found", not_found=True)
            return self.users[match.group(1)]
        raise AssertionError(f"unexpected GET {path}")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.writes.append(("POST", path))
        if path == "/applications":
            created = {**body, "id": f"obj-{len(self.applications)}", "appId": str(uuid.uuid4())}
            self.applications[created["id"]] = created
            return created
        if path == "/servicePrincipals":
            created = {**body, "id": f"sp-{body['appId']}"}
            self.principals[created["id"]] = created
            return created
        if path.endswith("/appRoleAssignedTo"):
            if any(a == body for a in self.assignments):
                raise hook.GraphError("Permission being assigned already exists on the object")
            self.assignments.append(body)
            return {**body, "id": "assignment"}
        raise AssertionError(f"unexpected POST {path}")

    def patch(self, path: str, body: dict[str, Any]) -> None:
        self.writes.append(("PATCH", path))
        kind, object_id = path.strip("/").split("/")
        store = self.applications if kind == "applications" else self.principals
        store[object_id].update(body)

    @staticmethod
    def _find(store: dict[str, dict[str, Any]], app_id: str) -> dict[str, Any]:
        for item in store.values():
            if item["appId"] == app_id:
                return item
        raise hook.GraphError("Resource does not exist", not_found=True)


def provision(graph: FakeGraph, env: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    stored: dict[str, str] = {}
    client_id = hook.preprovision(graph, {**ENV, **(env or {})}, lambda name, value: stored.update({name: value}))
    return client_id, stored


# The app roles


def test_the_app_roles_are_the_apps_roles_for_users_and_automation_clients():
    # When
    roles = hook.app_roles()

    # Then
    assert [role["value"] for role in roles] == [role.value for role in Role]
    for role in roles:
        assert role["allowedMemberTypes"] == ["User", "Application"]
        assert role["isEnabled"] is True
        assert len(role["description"]) > 20


def test_role_ids_never_change():
    # Then (Graph refuses to change the id of an enabled role, and a new id would be a new role that
    # nobody holds): pinned, so a change to how they are derived fails here first
    assert {role["value"]: role["id"] for role in hook.app_roles()} == {
        "Rebound.Reader": "dc88a727-27ff-5f7e-9dd3-781f0d318edd",
        "Rebound.Operator": "b3d5d944-ab1b-5ae3-8d35-3456a9179f6b",
        "Rebound.Admin": "a16a246f-608c-5907-a7ba-eaa10bdd1b96",
    }


# preprovision


def test_preprovision_creates_the_registration_and_its_service_principal_and_stores_the_client_id():
    # Given
    graph = FakeGraph()

    # When
    client_id, stored = provision(graph)

    # Then
    (application,) = graph.applications.values()
    assert stored == {"AZURE_AUTH_CLIENT_ID": client_id} and application["appId"] == client_id
    assert application["displayName"] == "rebound-rebound-dev"
    assert application["signInAudience"] == "AzureADMyOrg"
    assert application["tags"] == ["rebound-azd-env:rebound-dev"]
    assert [role["value"] for role in application["appRoles"]] == [role.value for role in Role]
    assert application["api"]["requestedAccessTokenVersion"] == 2
    assert application["web"]["implicitGrantSettings"] == {
        "enableIdTokenIssuance": True,
        "enableAccessTokenIssuance": False,
    }
    assert application["identifierUris"] == [f"api://{client_id}"]
    (principal,) = graph.principals.values()
    assert (principal["appId"], principal["appRoleAssignmentRequired"]) == (client_id, True)


def test_preprovision_run_again_finds_the_same_registration_instead_of_adding_one():
    # Given: a first run, then a run on another machine (no AZURE_AUTH_CLIENT_ID yet)
    graph = FakeGraph()
    first, _ = provision(graph)

    # When
    again, stored = provision(graph)
    with_id, _ = provision(graph, {"AZURE_AUTH_CLIENT_ID": first})

    # Then
    assert again == with_id == first
    assert stored == {"AZURE_AUTH_CLIENT_ID": first}
    assert len(graph.applications) == 1 and len(graph.principals) == 1
    assert [w for w in graph.writes if w[0] == "POST"] == [("POST", "/applications"), ("POST", "/servicePrincipals")]


def test_preprovision_keeps_what_others_added_to_the_registration():
    # Given: a registration an admin gave another role and redirect URI
    graph = FakeGraph()
    client_id, _ = provision(graph)
    (application,) = graph.applications.values()
    foreign_role = {"id": str(uuid.uuid4()), "value": "Other.Role", "allowedMemberTypes": ["User"], "isEnabled": True}
    application["appRoles"].append(foreign_role)
    application["web"]["redirectUris"] = ["https://custom.example/.auth/login/aad/callback"]

    # When
    provision(graph, {"AZURE_AUTH_CLIENT_ID": client_id})

    # Then
    assert foreign_role in application["appRoles"]
    assert len(application["appRoles"]) == 4
    assert application["web"]["redirectUris"] == ["https://custom.example/.auth/login/aad/callback"]


def test_preprovision_turns_role_assignment_required_back_on():
    # Given
    graph = FakeGraph()
    provision(graph)
    (principal,) = graph.principals.values()
    principal["appRoleAssignmentRequired"] = False

    # When
    provision(graph)

    # Then
    assert principal["appRoleAssignmentRequired"] is True


def test_a_client_id_that_names_no_registration_stops_preprovision():
    # When / Then
    with pytest.raises(SystemExit, match="names no app registration"):
        provision(FakeGraph(), {"AZURE_AUTH_CLIENT_ID": str(uuid.uuid4())})


# postprovision


def test_postprovision_adds_the_apps_sign_in_redirect_uri_once():
    # Given
    graph = FakeGraph()
    client_id, _ = provision(graph)
    env = {
        **ENV,
        "AZURE_AUTH_CLIENT_ID": client_id,
        "SERVICE_API_URI": "https://func-api-x-abc.swedencentral-01.azurewebsites.net",
    }

    # When
    hook.postprovision(graph, env)
    hook.postprovision(graph, env)

    # Then
    (application,) = graph.applications.values()
    assert application["web"]["redirectUris"] == [
        "https://func-api-x-abc.swedencentral-01.azurewebsites.net/.auth/login/aad/callback"
    ]
    assert application["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is True


@pytest.mark.parametrize("uri", ["", "http://func.example", "https://func.example/path"])
def test_postprovision_refuses_a_service_uri_that_is_not_an_https_host(uri):
    # When / Then
    with pytest.raises(SystemExit, match="SERVICE_API_URI"):
        hook.postprovision(FakeGraph(), {**ENV, "AZURE_AUTH_CLIENT_ID": "x", "SERVICE_API_URI": uri})


# grant


@pytest.mark.parametrize(
    ("whom", "principal_id"),
    [
        ({"user": "ada@contoso.example"}, "user-ada"),
        ({"object_id": "group-ops"}, "group-ops"),
    ],
)
def test_grant_assigns_the_role_of_the_apps_registration(whom, principal_id):
    # Given
    graph = FakeGraph()
    client_id, _ = provision(graph)

    # When
    hook.grant(graph, client_id, "Rebound.Operator", **whom)
    hook.grant(graph, client_id, "Rebound.Operator", **whom)  # already held: fine

    # Then
    (principal,) = graph.principals.values()
    assert graph.assignments == [
        {"principalId": principal_id, "resourceId": principal["id"], "appRoleId": hook.role_id("Rebound.Operator")}
    ]


def test_grant_gives_an_automation_client_its_role_by_client_id():
    # Given: the app's own registration and an automation client's
    graph = FakeGraph()
    client_id, _ = provision(graph)
    graph.principals["sp-automation"] = {"id": "sp-automation", "appId": "automation-client"}

    # When
    hook.grant(graph, client_id, "Rebound.Reader", client_id="automation-client")

    # Then
    assert graph.assignments[0]["principalId"] == "sp-automation"
    assert graph.assignments[0]["appRoleId"] == hook.role_id("Rebound.Reader")


def test_grant_refuses_a_role_the_app_does_not_have():
    # When / Then
    with pytest.raises(SystemExit, match="unknown role"):
        hook.grant(FakeGraph(), "x", "Rebound.Owner", user="ada@contoso.example")


# Graph through az rest


def test_graph_calls_go_through_az_rest_and_a_404_is_told_apart():
    # Given
    commands: list[list[str]] = []

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        if command[command.index("--method") + 1] == "GET":
            return subprocess.CompletedProcess(command, 1, "", "ERROR: Not Found({...Request_ResourceNotFound...})")
        return subprocess.CompletedProcess(command, 0, '{"id": "1"}', "")

    graph = hook.Graph(run)

    # When
    with pytest.raises(hook.GraphError) as raised:
        graph.get("/applications(appId='x')")
    created = graph.post("/applications", {"displayName": "n"})

    # Then
    assert raised.value.not_found
    assert created == {"id": "1"}
    assert commands[1][1:] == [
        "rest",
        "--method",
        "POST",
        "--url",
        "https://graph.microsoft.com/v1.0/applications",
        "--output",
        "json",
        "--headers",
        "Content-Type=application/json",
        "--body",
        '{"displayName": "n"}',
    ]


# azure.yaml


def test_azd_runs_the_hook_before_and_after_provisioning_on_every_platform():
    # When
    text = (ROOT / "azure.yaml").read_text()

    # Then
    for event in ("preprovision", "postprovision"):
        block = re.search(rf"^  {event}:\n((?:    .*\n)+)", text, re.MULTILINE)
        assert block, f"azure.yaml has no {event} hook"
        runs = re.findall(r"^      run: (.*)$", block.group(1), re.MULTILINE)
        assert runs == [
            f"python3 infra/hooks/app_registration.py {event}",
            f"python infra/hooks/app_registration.py {event}",
        ]
    assert re.search(r"^hooks:$", text, re.MULTILINE)
