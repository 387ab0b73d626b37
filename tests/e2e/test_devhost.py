"""devhost run as a real process against the session's Azurite, driving tests/e2e/devhost_app.

The app's functions run in the devhost process, so they report what they saw as JSON
messages on `<prefix>observed`, which `Observations` reads. HTTP-only tests share one
devhost per module (they touch no storage of their own); every queue and timer test
starts its own devhost with its own prefix.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess, DevhostStartError
from shared.auth import Principal, Role, parse_client_principal

pytestmark = pytest.mark.e2e

APP_DIR = Path(__file__).parent / "devhost_app"
FUNCTION_KEY = "e2e-function-key"
#: The `echo` function's own key (DEVHOST_FUNCTION_KEYS): it opens `echo` and nothing else.
ECHO_KEY = "e2e-echo-key"
DEV_USERS = {"admin": ["Rebound.Admin"], "operator": ["Rebound.Operator"], "reader": ["Rebound.Reader"]}
#: What a client could try to slip past the front end.
FORGED = {
    "X-MS-CLIENT-PRINCIPAL": "eyJhdXRoX3R5cCI6ImFhZCJ9",
    "X-MS-CLIENT-PRINCIPAL-NAME": "admin",
    "x-ms-client-principal-id": "1",
    "X-Ms-Client-Principal-Idp": "aad",
    "X-MS-TOKEN-AAD-ID-TOKEN": "forged",
}
#: Fires on 1 January only: keeps the `tick` timer quiet in tests that are not about it.
YEARLY = "0 0 0 1 1 *"
#: Queue observations are received with this visibility timeout, so each is read once, without deletes.
READ_ONCE_S = 3600

Observation = dict[str, Any]


def app_env(storage_env: dict[str, str], **overrides: str) -> dict[str, str]:
    return {**storage_env, "DEVHOST_FUNCTION_KEY": FUNCTION_KEY, "TICK_SCHEDULE": YEARLY, **overrides}


def queue_client(connection_string: str, name: str, *, base64: bool = False) -> QueueClient:
    codec: dict[str, Any] = (
        {"message_encode_policy": BinaryBase64EncodePolicy(), "message_decode_policy": BinaryBase64DecodePolicy()}
        if base64
        else {}
    )
    client = QueueClient.from_connection_string(connection_string, name, **codec)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


class Observations:
    """What the app's functions reported, read from `<prefix>observed`."""

    def __init__(self, connection_string: str, prefix: str) -> None:
        self._client = queue_client(connection_string, f"{prefix}observed")
        self.seen: list[Observation] = []

    def of_kind(self, kind: str) -> list[Observation]:
        self._read()
        return [item for item in self.seen if item["kind"] == kind]

    def wait_for(self, kind: str, count: int, timeout_s: float) -> list[Observation]:
        wait_until(lambda: len(self.of_kind(kind)) >= count, timeout_s, f"{count} '{kind}' observations")
        return self.of_kind(kind)

    def _read(self) -> None:
        for message in self._client.receive_messages(messages_per_page=32, visibility_timeout=READ_ONCE_S):
            self.seen.append(json.loads(message.content))

    def close(self) -> None:
        self._client.close()


def call(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None):
    """(status, headers, body) for any status, 4xx and 5xx included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


def approximate_count(client: QueueClient) -> int:
    return client.get_queue_properties().approximate_message_count or 0


def copy_app(tmp_path: Path, *, queues: dict[str, Any] | None = None, function_app: str | None = None) -> Path:
    """A copy of the test app under tmp_path, optionally with other queue options or code."""
    app_dir = tmp_path / "app"
    shutil.copytree(APP_DIR, app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    if queues is not None:
        host = json.loads((app_dir / "host.json").read_text())
        host["extensions"]["queues"].update(queues)
        (app_dir / "host.json").write_text(json.dumps(host))
    if function_app is not None:
        (app_dir / "function_app.py").write_text(function_app)
    return app_dir


@pytest.fixture
def observations(azurite: AzuriteProcess, prefix: str) -> Iterator[Observations]:
    observed = Observations(azurite.connection_string, prefix)
    yield observed
    observed.close()


@pytest.fixture
def start_devhost(tmp_path: Path) -> Iterator[Callable[..., DevhostProcess]]:
    started: list[DevhostProcess] = []

    def start(env: dict[str, str], app_dir: Path = APP_DIR) -> DevhostProcess:
        process = DevhostProcess(app_dir, env, log_path=tmp_path / f"devhost-{len(started)}.log", grace_s=5)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def http_devhost(azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    prefix = "t" + uuid.uuid4().hex[:10]
    storage_env = {"AzureWebJobsStorage": azurite.connection_string, "REBOUND_PREFIX": prefix}
    queue_client(azurite.connection_string, f"{prefix}observed").close()
    log_path = tmp_path_factory.mktemp("devhost") / "devhost.log"
    # No AUTH_MODE (so not dev): a marker from the environment must not reach the app.
    with DevhostProcess(APP_DIR, app_env(storage_env, DEVHOST_EASY_AUTH="1"), log_path=log_path) as process:
        yield process


@pytest.fixture(scope="module")
def dev_auth_devhost(azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevhostProcess]:
    """devhost playing Easy Auth (AUTH_MODE=dev) for three dev users, with a per-function key for `echo`."""
    storage_env = {"AzureWebJobsStorage": azurite.connection_string, "REBOUND_PREFIX": "t" + uuid.uuid4().hex[:10]}
    env = app_env(
        storage_env,
        AUTH_MODE="dev",
        DEVHOST_USERS=json.dumps(DEV_USERS),
        DEVHOST_FUNCTION_KEYS=json.dumps({"echo": ECHO_KEY}),
    )
    log_path = tmp_path_factory.mktemp("devhost") / "devhost.log"
    with DevhostProcess(APP_DIR, env, log_path=log_path) as process:
        yield process


def root_url(devhost: DevhostProcess) -> str:
    """The host root (`/.auth/...` lives there, outside the /api prefix)."""
    return devhost.base_url.removesuffix("/api")


def browser(devhost: DevhostProcess) -> httpx.Client:
    """A client that keeps cookies and does not follow redirects (the tests look at them)."""
    return httpx.Client(base_url=root_url(devhost), follow_redirects=False, trust_env=False, timeout=30)


def seen_by_app(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# HTTP


def test_http_function_gets_route_and_query_parameters_over_a_real_socket(http_devhost):
    # When
    status, headers, body = call(
        "GET", f"{http_devhost.base_url}/items/books/12?q=red%20shoes&page=2", headers={"x-functions-key": FUNCTION_KEY}
    )

    # Then
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Item-Id"] == "12"
    assert json.loads(body) == {
        "method": "GET",
        "route_params": {"category": "books", "item_id": "12"},
        "params": {"q": "red shoes", "page": "2"},
    }


def test_int_constrained_route_does_not_match_a_non_integer(http_devhost):
    # When
    status, _, body = call("GET", f"{http_devhost.base_url}/items/books/twelve?code={FUNCTION_KEY}")

    # Then
    assert (status, error_code(body)) == (404, "not_found")


def test_function_level_route_needs_the_key_in_header_or_code_query(http_devhost):
    # Given
    url = f"{http_devhost.base_url}/items/books/1"

    # When
    without_key = call("GET", url)
    wrong_key = call("GET", url, headers={"x-functions-key": "wrong"})
    header_key = call("GET", url, headers={"x-functions-key": FUNCTION_KEY})
    query_key = call("GET", f"{url}?code={FUNCTION_KEY}")

    # Then
    assert (without_key[0], error_code(without_key[2])) == (401, "unauthorized")
    assert wrong_key[0] == 401
    assert (header_key[0], query_key[0]) == (200, 200)


def test_anonymous_route_is_open_and_a_returned_string_is_plain_text(http_devhost):
    # When
    status, headers, body = call("GET", f"{http_devhost.base_url}/hello")

    # Then
    assert (status, headers["Content-Type"], body) == (200, "text/plain; charset=utf-8", b"hello")


def test_unknown_route_is_404_and_known_route_with_wrong_method_is_405(http_devhost):
    # When
    unknown = call("GET", f"{http_devhost.base_url}/nothing-here")
    outside_prefix = call("GET", http_devhost.base_url.removesuffix("/api") + "/hello")
    wrong_method = call("DELETE", f"{http_devhost.base_url}/hello")

    # Then
    assert (unknown[0], error_code(unknown[2])) == (404, "not_found")
    assert outside_prefix[0] == 404
    assert (wrong_method[0], error_code(wrong_method[2])) == (405, "method_not_allowed")
    allow: Message = wrong_method[1]
    assert allow["Allow"] == "GET"


def test_exception_in_an_http_function_is_a_json_500(http_devhost):
    # When
    status, _, body = call("GET", f"{http_devhost.base_url}/boom")

    # Then
    assert (status, error_code(body)) == (500, "internal")
    assert "boom" in json.loads(body)["error"]["message"]


def test_request_body_over_ten_mib_reaches_the_function_and_comes_back(http_devhost):
    # Given
    payload = bytes(range(256)) * (11 * 4096)  # 11 MiB

    # When
    status, headers, body = call(
        "POST", f"{http_devhost.base_url}/echo", headers={"x-functions-key": FUNCTION_KEY}, body=payload
    )

    # Then
    assert (status, headers["Content-Type"]) == (201, "application/octet-stream")
    assert body == payload


# Easy Auth (AUTH_MODE=dev) and per-function keys


@pytest.mark.parametrize("devhost_fixture", ["http_devhost", "dev_auth_devhost"])
def test_principal_headers_a_client_sends_never_reach_the_app_in_any_mode(devhost_fixture, request):
    # Given
    devhost: DevhostProcess = request.getfixturevalue(devhost_fixture)

    # When
    with browser(devhost) as client:
        seen = seen_by_app(client.get("/api/whoami", headers=FORGED))

    # Then
    assert seen["headers"] == dict.fromkeys(
        ["X-MS-CLIENT-PRINCIPAL", "X-MS-CLIENT-PRINCIPAL-NAME", "X-MS-CLIENT-PRINCIPAL-ID", "X-MS-CLIENT-PRINCIPAL-IDP"]
    )
    assert seen["token_headers"] == []


def test_only_devhost_playing_easy_auth_marks_the_apps_environment(http_devhost, dev_auth_devhost):
    # When
    with browser(http_devhost) as plain, browser(dev_auth_devhost) as playing:
        unmarked = seen_by_app(plain.get("/api/whoami"))
        marked = seen_by_app(playing.get("/api/whoami"))

    # Then (http_devhost was started with DEVHOST_EASY_AUTH=1 in its environment)
    assert unmarked["marker"] is None
    assert marked["marker"] == "1"


def test_a_bearer_dev_user_reaches_the_app_as_the_principal_easy_auth_injects(dev_auth_devhost):
    # Given: a dev user's token, and a forged admin principal beside it
    headers = {**FORGED, "Authorization": "Bearer dev:operator"}

    # When
    with browser(dev_auth_devhost) as client:
        seen = seen_by_app(client.get("/api/whoami", headers=headers))

    # Then
    injected = seen["headers"]
    assert parse_client_principal(injected) == Principal(
        name="operator", id="operator", auth="dev", roles=frozenset({Role.OPERATOR})
    )
    assert (injected["X-MS-CLIENT-PRINCIPAL-NAME"], injected["X-MS-CLIENT-PRINCIPAL-IDP"]) == ("operator", "dev")
    assert seen["authorization"] == "Bearer dev:operator"
    assert seen["token_headers"] == []


@pytest.mark.parametrize("authorization", ["Bearer dev:nobody", "Bearer eyJ0eXAiOiJKV1QifQ.e30.x"])
def test_an_unknown_dev_user_is_a_401_json_error_even_on_an_anonymous_route(dev_auth_devhost, authorization):
    # When
    with browser(dev_auth_devhost) as client:
        response = client.get("/api/whoami", headers={"Authorization": authorization})

    # Then
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_signing_in_on_the_page_sets_a_session_that_me_and_the_app_see_until_sign_out(dev_auth_devhost):
    with browser(dev_auth_devhost) as client:
        # Given: the sign-in page, asked to come back to the app afterwards
        page = client.get("/.auth/login/dev", params={"post_login_redirect_uri": "/api/whoami"})
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert '<label for="user-reader">reader' in page.text
        assert 'name="post_login_redirect_uri" value="/api/whoami"' in page.text

        # When: the form is sent for "reader"
        signed_in = client.post("/.auth/login/dev", data={"user": "reader", "post_login_redirect_uri": "/api/whoami"})

        # Then: back to the app, with an HttpOnly SameSite=Lax session cookie
        assert (signed_in.status_code, signed_in.headers["Location"]) == (302, "/api/whoami")
        cookie = signed_in.headers["Set-Cookie"]
        assert cookie.startswith("AppServiceAuthSession=reader;")
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        principal = parse_client_principal(seen_by_app(client.get("/api/whoami"))["headers"])
        assert principal is not None and principal.name == "reader"
        me = client.get("/.auth/me")
        assert me.status_code == 200
        assert me.json() == [
            {
                "provider_name": "dev",
                "user_id": "reader",
                "user_claims": [
                    {"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier", "val": "reader"},
                    {"typ": "name", "val": "reader"},
                    {"typ": "roles", "val": "Rebound.Reader"},
                ],
            }
        ]

        # When: signing out
        signed_out = client.get("/.auth/logout")

        # Then: the cookie is gone, and so is the principal
        assert (signed_out.status_code, signed_out.headers["Location"]) == (302, "/.auth/login/dev")
        assert client.cookies.get("AppServiceAuthSession") is None
        assert client.get("/.auth/me").status_code == 401
        assert seen_by_app(client.get("/api/whoami"))["headers"]["X-MS-CLIENT-PRINCIPAL"] is None


def test_me_answers_a_bearer_dev_user_and_refuses_an_anonymous_caller(dev_auth_devhost):
    # When
    with browser(dev_auth_devhost) as client:
        bearer = client.get("/.auth/me", headers={"Authorization": "Bearer dev:admin"})
        anonymous = client.get("/.auth/me")

    # Then
    assert bearer.json()[0]["user_id"] == "admin"
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_sign_in_and_sign_out_redirect_only_to_paths_on_this_host(dev_auth_devhost, target):
    # When
    with browser(dev_auth_devhost) as client:
        page = client.get("/.auth/login/dev", params={"post_login_redirect_uri": target})
        form = client.post("/.auth/login/dev", data={"user": "admin", "post_login_redirect_uri": target})
        logout = client.get("/.auth/logout", params={"post_logout_redirect_uri": target})

    # Then
    for response in (page, form, logout):
        assert response.status_code == 400
        assert response.json()["error"]["details"]["parameter"].startswith("post_log")
    assert "Set-Cookie" not in form.headers


def test_signing_in_as_an_unknown_user_is_401_and_sets_no_cookie(dev_auth_devhost):
    # When
    with browser(dev_auth_devhost) as client:
        response = client.post("/.auth/login/dev", data={"user": "root"})

    # Then
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")
    assert "Set-Cookie" not in response.headers


def test_the_auth_endpoints_exist_only_while_devhost_plays_easy_auth(http_devhost):
    # When
    with browser(http_devhost) as client:
        response = client.get("/.auth/me", headers={"Authorization": "Bearer dev:admin"})

    # Then
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_a_functions_own_key_opens_that_function_and_nothing_else(dev_auth_devhost):
    # Given
    url = dev_auth_devhost.base_url

    # When
    own_key = call("POST", f"{url}/echo", headers={"x-functions-key": ECHO_KEY}, body=b"hi")
    own_key_in_query = call("POST", f"{url}/echo?code={ECHO_KEY}", body=b"hi")
    elsewhere = call("GET", f"{url}/items/books/1", headers={"x-functions-key": ECHO_KEY})
    host_key_there = call("GET", f"{url}/items/books/1", headers={"x-functions-key": FUNCTION_KEY})
    host_key_here = call("POST", f"{url}/echo", headers={"x-functions-key": FUNCTION_KEY}, body=b"hi")

    # Then
    assert (own_key[0], own_key[2]) == (201, b"hi")
    assert own_key_in_query[0] == 201
    assert (elsewhere[0], error_code(elsewhere[2])) == (401, "unauthorized")
    assert (host_key_there[0], host_key_here[0]) == (200, 201)


def test_a_dev_user_needs_the_function_key_as_well_on_a_keyed_route(dev_auth_devhost):
    # When: Easy Auth identifies the caller; the Functions level still wants its key
    status, _, body = call(
        "GET", f"{dev_auth_devhost.base_url}/items/books/1", headers={"Authorization": "Bearer dev:admin"}
    )

    # Then
    assert (status, error_code(body)) == (401, "unauthorized")


# Queues


def test_failing_queue_message_is_retried_and_lands_in_poison_after_max_dequeue_count(
    azurite, prefix, storage_env, observations, start_devhost
):
    # Given
    inbound = queue_client(azurite.connection_string, f"{prefix}failing", base64=True)
    poison = queue_client(azurite.connection_string, f"{prefix}failing-poison", base64=True)
    start_devhost(app_env(storage_env))

    # When
    inbound.send_message(b"payload-1")

    # Then
    wait_until(lambda: approximate_count(poison) == 1, 15, "the message in the poison queue")
    attempts = observations.of_kind("failing")
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3]
    assert {a["body"] for a in attempts} == {"payload-1"}
    assert [m.content for m in poison.receive_messages()] == [b"payload-1"]
    assert approximate_count(inbound) == 0
    inbound.close()
    poison.close()


def test_message_that_is_not_base64_is_poisoned_without_reaching_the_function(
    azurite, prefix, storage_env, observations, start_devhost
):
    # Given
    inbound = queue_client(azurite.connection_string, f"{prefix}failing")
    poison = queue_client(azurite.connection_string, f"{prefix}failing-poison")
    start_devhost(app_env(storage_env))

    # When
    inbound.send_message("this is not base64!")

    # Then
    wait_until(lambda: approximate_count(poison) == 1, 15, "the message in the poison queue")
    assert [m.content for m in poison.receive_messages()] == ["this is not base64!"]
    assert observations.of_kind("failing") == []
    inbound.close()
    poison.close()


def test_host_json_batch_size_and_threshold_bound_concurrency(
    azurite, prefix, storage_env, observations, start_devhost, tmp_path
):
    # Given: six messages waiting, and a host.json allowing 2 at once (batchSize 2 + newBatchThreshold 0)
    app_dir = copy_app(tmp_path, queues={"batchSize": 2, "newBatchThreshold": 0})
    slow = queue_client(azurite.connection_string, f"{prefix}slow", base64=True)
    for number in range(6):
        slow.send_message(f"m{number}".encode())

    # When
    start_devhost(app_env(storage_env, SLOW_SECONDS="0.4"), app_dir)

    # Then
    done = observations.wait_for("slow", 6, timeout_s=20)
    assert max(item["running"] for item in done) == 2
    assert sorted(item["body"] for item in done) == [f"m{n}" for n in range(6)]
    slow.close()


def test_message_outliving_its_lease_stays_invisible_and_is_processed_once(
    azurite, prefix, storage_env, observations, start_devhost
):
    # Given: a 2 s lease and a function that takes 3 s
    slow = queue_client(azurite.connection_string, f"{prefix}slow", base64=True)
    start_devhost(app_env(storage_env, SLOW_SECONDS="3", DEVHOST_QUEUE_LEASE_S="2"))

    # When
    slow.send_message(b"long job")

    # Then
    (done,) = observations.wait_for("slow", 1, timeout_s=15)
    assert done["dequeue_count"] == 1
    # A lapsed lease would have let a second receive take the message and keep it alive.
    wait_until(lambda: approximate_count(slow) == 0, 5, "the message to be deleted")
    slow.close()


def test_shutdown_lets_a_running_invocation_finish_and_exits_zero(
    azurite, prefix, storage_env, observations, start_devhost
):
    # Given: an invocation in progress
    slow = queue_client(azurite.connection_string, f"{prefix}slow", base64=True)
    devhost = start_devhost(app_env(storage_env, SLOW_SECONDS="1.5"))
    slow.send_message(b"in flight")
    wait_until(lambda: slow.peek_messages() == [], 10, "the message to be received")

    # When
    exit_code = devhost.stop()

    # Then
    assert exit_code == 0
    assert len(observations.wait_for("slow", 1, timeout_s=5)) == 1
    assert approximate_count(slow) == 0
    slow.close()


# Timers


def test_timer_fires_on_a_seconds_schedule_and_run_on_startup_fires_at_start(storage_env, observations, start_devhost):
    # Given
    start_devhost(app_env(storage_env, TICK_SCHEDULE="*/1 * * * * *"))

    # When
    ticks = observations.wait_for("tick", 2, timeout_s=6)
    startup = observations.wait_for("startup", 1, timeout_s=2)

    # Then
    assert [item["past_due"] for item in startup] == [False]
    assert not any(item["past_due"] for item in ticks)
    # (their spacing is pinned on a fake clock: test_devhost_timer.py, one second apart)


# Start-up validation


def test_binding_name_mismatch_fails_start_up_with_a_clear_message(storage_env, start_devhost, tmp_path):
    # Given
    app_dir = copy_app(
        tmp_path,
        function_app=(
            "import azure.functions as func\n"
            "app = func.FunctionApp()\n"
            "@app.queue_trigger(arg_name='msg', queue_name='inbound', connection='AzureWebJobsStorage')\n"
            "def engine(message: func.QueueMessage) -> None:\n"
            "    pass\n"
        ),
    )

    # When / Then
    with pytest.raises(DevhostStartError, match=r"function 'engine': binding\(s\) msg have no parameter"):
        start_devhost(app_env(storage_env), app_dir)
