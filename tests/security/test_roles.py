"""Who may call what, through devhost playing Easy Auth (AUTH_MODE=dev) in front of the real app.

The role matrix walks every route the app registers (`registered_operations()`), so a new route
fails here until it has a sample request: without a principal an "api" route is 401, with the role
just below its own it is 403 naming the role, and with its role it answers 2xx. Ingest takes the
function key and no principal; public routes take nothing. Then: forged principal headers are
refused, every action lands in the audit trail as its caller's, and `entra` without App Service
Authentication refuses every portal/API call.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from blueprints.api import Operation
from blueprints.operability import registered_operations
from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.auth import PRINCIPAL_HEADER, Role, RouteKind
from tests.e2e.app_host import DEFAULT_HEADERS, FUNCTION_KEY, app_env, running_app, unique_prefix
from tests.e2e.portal_support import Message, seed_failures
from tests.support.auth import principal_headers
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("roles")]

#: Jobs run one item a second: a retry job over a few failures stays active long enough to be cancelled.
HOST_SETTINGS = {"JOB_RATE_LIMIT_PER_S": "1", "JOB_PAGE_SIZE": "1"}
#: The dev user holding exactly each role, and one holding none.
USER_OF = {Role.READER: "reader", Role.OPERATOR: "operator", Role.ADMIN: "admin", None: "norole"}
#: The role just below each one (for the 403): a Reader route refuses a principal without roles.
BELOW = {Role.READER: None, Role.OPERATOR: Role.READER, Role.ADMIN: Role.OPERATOR}


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    # `Upstream`: the connection a pickup source names (never the app's own storage setting).
    with running_app(app_env(azurite, unique_prefix(), Upstream=azurite.connection_string, **HOST_SETTINGS)) as host:
        yield host


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text="rejected")])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=host.base_url, headers=DEFAULT_HEADERS, timeout=30, trust_env=False) as http:
        yield http


@dataclass(frozen=True)
class Sample:
    """A request that succeeds for a caller holding the route's role."""

    path: str
    body: Any = None
    status: int = 200
    content: bytes | None = None


def config(receiver: Receiver) -> dict[str, Any]:
    return {"name": "Matrix", "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}}


#: A pickup source for the pickup routes: a container looked at once an hour (it need not exist).
SOURCE = {"kind": "blob", "connection": "Upstream", "container": "matrixdrop", "interval_seconds": 3600}


@dataclass
class World:
    """What the samples point at: made once per module, as the admin."""

    admin: httpx.AsyncClient
    receiver: Receiver
    integration: str
    failure_id: str
    job_id: str
    #: An integration with a pickup source.
    sourced: str

    async def fresh_integration(self) -> str:
        name = f"m{uuid.uuid4().hex[:8]}"
        answer = await self.admin.put(f"/integrations/{name}", json=config(self.receiver))
        assert answer.status_code == 201, answer.text
        return name

    async def active_job(self) -> tuple[str, str]:
        """An integration with a retry job that stays active for seconds (one failure a second)."""
        name = await self.fresh_integration()
        await seed_failures(
            self.admin, self.receiver, name, [Message({"n": n}) for n in range(6)], **config(self.receiver)
        )
        answer = await self.admin.post(
            f"/integrations/{name}/jobs", json={"action": "retry", "selection": {"all": True}}
        )
        assert answer.status_code == 202, answer.text
        return name, answer.json()["id"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(admin: httpx.AsyncClient, receiver: Receiver) -> World:
    integration = "matrix"
    await seed_failures(admin, receiver, integration, [Message({"n": 1}), Message({"n": 2})], **config(receiver))
    # One failure stays (for the detail route); a retry job takes the other.
    kept, retried = (await admin.get(f"/integrations/{integration}/failures")).json()["items"]
    job = await admin.post(
        f"/integrations/{integration}/jobs", json={"action": "retry", "selection": {"ids": [retried["id"]]}}
    )
    assert job.status_code == 202, job.text
    sourced = await admin.put("/integrations/sourced", json={**config(receiver), "source": SOURCE})
    assert sourced.status_code == 201, sourced.text
    rule = await admin.put(f"/alert-rules/{RULE}", json=alert_rule(receiver))
    assert rule.status_code == 201, rule.text
    return World(admin, receiver, integration, kept["id"], job.json()["id"], "sourced")


#: An alert rule the alert routes' samples point at (made in `world`).
RULE = "matrix-rule"


def alert_rule(receiver: Receiver) -> dict[str, Any]:
    return {"kind": "failure_count", "channel": {"kind": "webhook", "url": receiver.url}}


async def _pause(world: World) -> Sample:
    return Sample(f"/integrations/{await world.fresh_integration()}/pause", {"reason": "matrix"})


async def _put_rule(world: World) -> Sample:
    return Sample(f"/alert-rules/r{uuid.uuid4().hex[:8]}", alert_rule(world.receiver), 201)


async def _delete_rule(world: World) -> Sample:
    rule_id = f"r{uuid.uuid4().hex[:8]}"
    created = await world.admin.put(f"/alert-rules/{rule_id}", json=alert_rule(world.receiver))
    assert created.status_code == 201, created.text
    return Sample(f"/alert-rules/{rule_id}", status=204)


async def _put(world: World) -> Sample:
    return Sample(f"/integrations/m{uuid.uuid4().hex[:8]}", config(world.receiver), 201)


async def _delete(world: World) -> Sample:
    return Sample(f"/integrations/{await world.fresh_integration()}", status=204)


async def _start(world: World) -> Sample:
    name = await world.fresh_integration()
    return Sample(f"/integrations/{name}/jobs", {"action": "delete", "selection": {"all": True}}, 202)


async def _cancel(world: World) -> Sample:
    name, job_id = await world.active_job()
    return Sample(f"/integrations/{name}/jobs/{job_id}/cancel", status=202)


async def _timeline(world: World) -> Sample:
    detail = await world.admin.get(f"/integrations/{world.integration}/failures/{world.failure_id}")
    assert detail.status_code == 200, detail.text
    path = f"/integrations/{world.integration}/messages/{detail.json()['failure']['message_id']}/timeline"

    async def status() -> int:
        return (await world.admin.get(path)).status_code

    await until(status, 200)  # written just after the failure
    return Sample(path)


async def _edit_retry(world: World) -> Sample:
    name = await world.fresh_integration()
    await seed_failures(world.admin, world.receiver, name, [Message({"n": 1})], **config(world.receiver))
    [failure] = (await world.admin.get(f"/integrations/{name}/failures")).json()["items"]
    return Sample(f"/integrations/{name}/failures/{failure['id']}/edit-retry", {"body_text": "{}"}, 202)


async def _mute(world: World) -> Sample:
    [group, *_] = (await world.admin.get(f"/integrations/{world.integration}/failure-groups")).json()["items"]
    return Sample(f"/integrations/{world.integration}/failure-groups/{group['group']}/mute", {"reason": "matrix"})


def _fixed(path: str, status: int = 200, content: bytes | None = None) -> Callable[[World], Awaitable[Sample]]:
    async def sample(world: World) -> Sample:
        return Sample(path.format(w=world), status=status, content=content)

    return sample


#: One sample per registered operation, by name: a new route fails the matrix until it has one here.
SAMPLES: dict[str, Callable[[World], Awaitable[Sample]]] = {
    "health": _fixed("/health"),
    "openapi_document": _fixed("/openapi.json"),
    "portal": _fixed("/portal"),
    "portal_asset": _fixed("/portal/js/main.js"),
    "portal_config": _fixed("/portal/config"),
    "me": _fixed("/me"),
    "list_integrations": _fixed("/integrations"),
    "get_integration": _fixed("/integrations/{w.integration}"),
    "put_integration": _put,
    "delete_integration": _delete,
    "ingest": _fixed("/ingest/{w.integration}", 202, b'{"n": 0}'),
    "ingest_message": _fixed("/integrations/{w.integration}/messages", 202, b'{"n": 0}'),
    "failures_overview": _fixed("/failures"),
    "list_failures": _fixed("/integrations/{w.integration}/failures"),
    "count_failures": _fixed("/integrations/{w.integration}/failures/count"),
    "get_failure": _fixed("/integrations/{w.integration}/failures/{w.failure_id}"),
    "failure_groups": _fixed("/integrations/{w.integration}/failure-groups"),
    "message_timeline": _timeline,
    "failure_facets": _fixed("/integrations/{w.integration}/failures/facets"),
    "export_failures": _fixed("/integrations/{w.integration}/failures/export"),
    "edit_retry_failure": _edit_retry,
    "mute_failure_group": _mute,
    "unmute_failure_group": _fixed("/integrations/{w.integration}/failure-groups/0123456789abcdef/unmute"),
    "start_job": _start,
    "list_jobs": _fixed("/integrations/{w.integration}/jobs"),
    "get_job": _fixed("/integrations/{w.integration}/jobs/{w.job_id}"),
    "cancel_job": _cancel,
    "recovery_status": _fixed("/recovery"),
    "recovery_replay": _fixed("/recovery/replay"),
    "list_audit": _fixed("/audit"),
    "get_pickup": _fixed("/integrations/{w.sourced}/pickup"),
    "run_pickup": _fixed("/integrations/{w.sourced}/pickup/run", 202),
    "metrics": _fixed("/metrics"),
    "pause_integration": _pause,
    "resume_integration": _fixed("/integrations/{w.integration}/resume"),
    "get_control": _fixed("/integrations/{w.integration}/control"),
    "list_alert_rules": _fixed("/alert-rules"),
    "get_alert_rule": _fixed(f"/alert-rules/{RULE}"),
    "put_alert_rule": _put_rule,
    "delete_alert_rule": _delete_rule,
    "test_alert_rule": _fixed(f"/alert-rules/{RULE}/test"),
    "list_alerts": _fixed("/alerts"),
}

OPERATIONS = registered_operations()


async def test_every_registered_route_has_a_sample_in_the_matrix():
    # Then: a route added to the app without a sample here fails, and no sample names a route that is gone
    assert sorted(SAMPLES) == sorted(operation.name for operation in OPERATIONS)


async def send(host: DevhostProcess, operation: Operation, sample: Sample, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30, trust_env=False) as http:
        if sample.content is not None:
            return await http.request(operation.method.upper(), sample.path, content=sample.content, headers=headers)
        return await http.request(operation.method.upper(), sample.path, json=sample.body, headers=headers)


def signed_in(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user}"}


@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation.name for operation in OPERATIONS])
async def test_each_route_answers_401_without_a_caller_403_without_its_role_and_2xx_with_it(operation, host, world):
    # Given a request that succeeds for the route's role
    assert operation.name in SAMPLES, f"{operation.name}: add a sample request to SAMPLES"
    sample = await SAMPLES[operation.name](world)

    if operation.kind is RouteKind.PUBLIC:
        # Then a public route answers anyone
        response = await send(host, operation, sample, {})
        assert response.status_code == sample.status, response.text
        return
    if operation.kind is RouteKind.INGEST:
        # Then ingest refuses a caller without the key, a signed-in admin included, and takes the key alone
        assert (await send(host, operation, sample, {})).status_code == 401
        assert (await send(host, operation, sample, signed_in("admin"))).status_code == 401
        response = await send(host, operation, sample, {"x-functions-key": FUNCTION_KEY})
        assert response.status_code == sample.status, response.text
        return

    # When nobody is signed in (the host key does not stand in for a sign-in), then 401
    anonymous = await send(host, operation, sample, {"x-functions-key": FUNCTION_KEY})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    if operation.role is not None:
        # When the caller holds the role just below, then 403 naming the role
        below = await send(host, operation, sample, signed_in(USER_OF[BELOW[operation.role]]))
        assert below.status_code == 403, below.text
        assert below.json()["error"]["details"] == {"required_role": operation.role.value}
    # When the caller holds exactly the route's role (any signed-in caller for "signed_in" routes), then 2xx
    allowed = await send(host, operation, sample, signed_in(USER_OF[operation.role]))
    assert allowed.status_code == sample.status, allowed.text


async def test_a_forged_principal_header_is_stripped_by_devhost_and_never_lends_a_role(host):
    # Given an admin's principal header, forged by the client
    forged = principal_headers("admin", Role.ADMIN)

    async with httpx.AsyncClient(base_url=host.base_url, timeout=30, trust_env=False) as http:
        # When it is sent alone, and beside a reader's sign-in, to an Admin route
        alone = await http.put("/integrations/forged", json={}, headers=forged)
        with_reader = await http.put("/integrations/forged", json={}, headers={**forged, **signed_in("reader")})
        me = await http.get("/me", headers={**forged, **signed_in("reader"), f"{PRINCIPAL_HEADER}-NAME": "admin"})

    # Then nobody becomes the admin: anonymous is 401, the reader stays a reader
    assert alone.status_code == 401
    assert with_reader.status_code == 403
    assert me.json() == {"name": "reader", "id": "reader", "auth": "dev", "roles": ["Rebound.Reader"]}


async def test_every_action_lands_in_the_audit_trail_as_its_callers(host, world):
    # Given the callers
    async def as_user(user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=host.base_url, headers=signed_in(user), timeout=30, trust_env=False
        ) as http:
            response = await http.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response

    name = f"a{uuid.uuid4().hex[:8]}"
    cancelled_in, cancelled_job = await world.active_job()

    # When an admin creates a config, an operator starts a job on it and it finishes, an operator cancels a
    # running job, replays recovery, and the admin deletes the config
    await as_user("admin", "PUT", f"/integrations/{name}", json=config(world.receiver))
    started = (
        await as_user(
            "operator", "POST", f"/integrations/{name}/jobs", json={"action": "delete", "selection": {"all": True}}
        )
    ).json()
    await until(lambda: job_state(world.admin, name, started["id"]), "completed")
    await as_user("operator", "POST", f"/integrations/{cancelled_in}/jobs/{cancelled_job}/cancel")
    await until(lambda: job_state(world.admin, cancelled_in, cancelled_job), "cancelled")
    await as_user("operator", "POST", "/recovery/replay")
    await as_user("admin", "DELETE", f"/integrations/{name}")

    # Then a reader finds each, with its actor, newest first
    trail = (await as_user("reader", "GET", "/audit", params={"integration": name})).json()["items"]
    assert [(e["action"], e["actor"]["name"]) for e in trail] == [
        ("config.delete", "admin"),
        ("job.finish", "operator"),
        ("job.start", "operator"),
        ("config.put", "admin"),
    ]
    assert {e["target"] for e in trail if e["action"].startswith("job.")} == {started["id"]}
    cancelled = (await as_user("reader", "GET", "/audit", params={"integration": cancelled_in})).json()["items"]
    assert [(e["action"], e["actor"]["name"]) for e in cancelled][:2] == [
        ("job.finish", "admin"),
        ("job.cancel", "operator"),
    ]
    replays = (
        await as_user("reader", "GET", "/audit", params={"action": "recovery.replay", "actor": "operator"})
    ).json()
    assert replays["items"] and replays["items"][0]["integration"] is None
    # And the filters and paging work through the route
    mine = (await as_user("reader", "GET", "/audit", params={"actor": "operator", "limit": "1"})).json()
    assert len(mine["items"]) == 1 and mine["next_cursor"]
    refused = await world.admin.get("/audit", params={"cursor": "not-ours"})
    assert refused.status_code == 400 and refused.json()["error"]["details"] == {"parameter": "cursor"}


async def test_pause_resume_and_alert_rule_changes_are_in_the_audit_trail_as_their_callers(host, world):
    name = await world.fresh_integration()
    rule_id = f"r{uuid.uuid4().hex[:8]}"
    async with (
        httpx.AsyncClient(base_url=host.base_url, headers=signed_in("operator"), timeout=30, trust_env=False) as op,
        httpx.AsyncClient(base_url=host.base_url, headers=signed_in("admin"), timeout=30, trust_env=False) as admin,
    ):
        # When an operator pauses (with a reason) and resumes, and an admin adds, tests and deletes a rule
        paused = await op.post(f"/integrations/{name}/pause", json={"reason": "receiver upgrade"})
        assert paused.json()["paused"]["by"] == "operator"
        assert (await op.post(f"/integrations/{name}/resume")).status_code == 200
        assert (await admin.put(f"/alert-rules/{rule_id}", json=alert_rule(world.receiver))).status_code == 201
        assert (await admin.post(f"/alert-rules/{rule_id}/test")).status_code == 200
        assert (await admin.delete(f"/alert-rules/{rule_id}")).status_code == 204

        # Then the trail has each, as its caller's
        trail = (await admin.get("/audit", params={"integration": name})).json()["items"]
        assert [(e["action"], e["actor"]["name"], e["details"]) for e in trail][:2] == [
            ("integration.resume", "operator", {"held": 0}),
            ("integration.pause", "operator", {"reason": "receiver upgrade"}),
        ]
        rules = (await admin.get("/audit", params={"actor": "admin", "limit": "20"})).json()["items"]
        mine = [e["action"] for e in rules if e["target"] == rule_id]
        assert mine == ["alert_rule.delete", "alert_rule.test", "alert_rule.put"]


async def job_state(http: httpx.AsyncClient, integration: str, job_id: str) -> str:
    return str((await http.get(f"/integrations/{integration}/jobs/{job_id}")).json()["state"])


# --- entra without App Service Authentication --------------------------------------------------


@pytest.fixture(scope="module")
def entra_host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    # devhost does not play Easy Auth in entra mode, and sets no platform signal: as an app deployed
    # with AUTH_MODE=entra whose App Service Authentication was switched off.
    with running_app(app_env(azurite, unique_prefix(), AUTH_MODE="entra")) as host:
        yield host


async def test_entra_without_easy_auth_refuses_every_portal_and_api_call_but_health_and_ingest(entra_host):
    # Given a client that forges an admin's principal and holds the host key
    headers = {**principal_headers("admin", Role.ADMIN), "x-functions-key": FUNCTION_KEY}
    async with httpx.AsyncClient(base_url=entra_host.base_url, headers=headers, timeout=30, trust_env=False) as http:
        # When it calls every route that names its caller
        refused = {}
        for operation in OPERATIONS:
            if operation.kind.needs_principal:
                path = SAMPLE_PATHS.get(operation.name, "/integrations/x")
                answer = await http.request(operation.method.upper(), path, json={})
                refused[operation.name] = (answer.status_code, answer.json()["error"]["details"].get("reason"))
        config_put = await http.put(
            "/integrations/x", json={"name": "x", "endpoint": {"kind": "http", "url": "http://127.0.0.1:9"}}
        )
        health = await http.get("/health")
        ingest = await http.post("/ingest/x", content=b"{}")
        portal_config = await http.get("/portal/config")

    # Then each is 401 easy_auth_disabled; health and the page's config answer, ingest reaches the app (404: no config)
    assert set(refused.values()) == {(401, "easy_auth_disabled")}
    assert config_put.status_code == 401
    assert health.status_code == 200
    assert ingest.status_code == 404
    assert portal_config.json()["auth_mode"] == "entra"


#: Paths for the entra check: any path of the route will do, since the caller is refused before the handler.
SAMPLE_PATHS = {
    operation.name: "/"
    + operation.path.strip("/").format(
        integration="x",
        failure_id="0000000000000000-000000000000",
        job_id="0000000000000000-000000000000",
        rule_id="x",
        message_id="m-1",
        group="0123456789abcdef",
    )
    for operation in OPERATIONS
    if operation.kind.needs_principal
}


async def test_a_job_names_who_started_it(world):
    # When the world's job (started by the admin) is read
    job = (await world.admin.get(f"/integrations/{world.integration}/jobs/{world.job_id}")).json()

    # Then
    assert job["created_by"] == {"name": "admin", "id": "admin", "auth": "dev"}


async def test_pick_up_now_is_in_the_audit_trail_as_the_operators(host, world):
    # When an operator asks a source to run now
    async with httpx.AsyncClient(
        base_url=host.base_url, headers=signed_in("operator"), timeout=30, trust_env=False
    ) as http:
        asked = await http.post(f"/integrations/{world.sourced}/pickup/run")
        trail = await http.get("/audit", params={"integration": world.sourced, "action": "pickup.run"})

    # Then the trail names the operator
    assert asked.status_code == 202, asked.text
    [latest, *_] = trail.json()["items"]
    assert (latest["actor"]["name"], latest["details"]) == ("operator", {"kind": "blob"})
