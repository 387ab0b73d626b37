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

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess, DevhostStartError

pytestmark = pytest.mark.e2e

APP_DIR = Path(__file__).parent / "devhost_app"
FUNCTION_KEY = "e2e-function-key"
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
    with DevhostProcess(APP_DIR, app_env(storage_env), log_path=log_path) as process:
        yield process


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
