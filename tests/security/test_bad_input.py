"""Bad input gets a 4xx with the error envelope naming the culprit, and writes nothing (issue 13, findings 4, 5).

Everything goes through devhost over real sockets to Azurite. Each test compares what the
prefix's storage holds (every table row's ETag, queue depths, blobs) before and after its
requests: a refused request must not have created or changed anything.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import DEFAULT_HEADERS, app_env, running_app, unique_prefix
from tests.security.storage_state import storage_state

#: One worker and one devhost for the whole module.
pytestmark = pytest.mark.xdist_group("bad_input")

KNOWN = "known"
#: Shaped like a real failure/job id, but nothing is stored under it.
ABSENT_RECORD = "0000000000000000-000000000000"
ENDPOINT = {"kind": "http", "url": "https://receiver.example/in"}
CONFIG: dict[str, Any] = {"name": "Known", "endpoint": ENDPOINT}
JOB = {"action": "delete", "selection": {"all": True}}
#: Timers write (the sweep's probe, the purge); once a year keeps them out of the storage comparisons.
QUIET_TIMERS = {
    "RECOVERY_SCHEDULE": "0 0 0 1 1 *",
    "RETENTION_SCHEDULE": "0 0 0 1 1 *",
    "PICKUP_SCHEDULE": "0 0 0 1 1 *",
    "CONTROL_SCHEDULE": "0 0 0 1 1 *",
    "ALERT_SCHEDULE": "0 0 0 1 1 *",
}


@dataclass(frozen=True)
class App:
    host: DevhostProcess
    http: httpx.Client
    connection_string: str
    prefix: str

    def state(self) -> dict[str, Any]:
        return storage_state(self.connection_string, self.prefix)


@pytest.fixture(scope="module")
def app(azurite: AzuriteProcess) -> Iterator[App]:
    prefix = unique_prefix()
    env = app_env(azurite, prefix, STORAGE_TIMEOUT_S="30", **QUIET_TIMERS)
    with (
        running_app(env) as host,
        httpx.Client(base_url=host.base_url, headers=DEFAULT_HEADERS, timeout=60, trust_env=False) as http,
    ):
        assert http.put(f"/integrations/{KNOWN}", json=CONFIG).status_code in (200, 201)
        yield App(host, http, azurite.connection_string, prefix)


def assert_refused(response: httpx.Response, status: int, code: str, **named: str) -> None:
    """A 4xx envelope with this status and code, naming the parameter or field; never 5xx, never Retry-After."""
    assert response.status_code == status, response.text
    assert "retry-after" not in response.headers
    error = response.json()["error"]
    assert error["code"] == code, response.text
    assert set(error) == {"code", "message", "details"}
    for key, value in named.items():
        if key == "field" and "fields" in error["details"]:
            assert value in [f["field"] for f in error["details"]["fields"]], response.text
        else:
            assert error["details"][key] == value, response.text


# --- finding 4: ids in the route --------------------------------------------------------------

#: Percent-encoded as they arrive: a slash, a fragment, a query mark, a backslash, control characters,
#: a newline, invalid UTF-8, and one past the longest id.
BAD_INTEGRATIONS = ["a%2Fb", "a%23b", "a%3Fb", "a%5Cb", "a%01b", "a%7Fb", "a%0Ab", "a%FFb", "a" * 65]
BAD_RECORDS = ["a%2Fb", "a%23b", "a%01b", "lock", ABSENT_RECORD + "0", "x" * 300]

ROUTES = [
    ("GET", "/integrations/{integration}", None),
    ("PUT", "/integrations/{integration}", CONFIG),
    ("DELETE", "/integrations/{integration}", None),
    ("POST", "/integrations/{integration}/messages", b"hello"),
    ("GET", "/integrations/{integration}/failures", None),
    ("GET", "/integrations/{integration}/failures/count", None),
    ("GET", "/integrations/{integration}/failures/{failure_id}", None),
    ("GET", "/integrations/{integration}/failure-groups", None),
    ("POST", "/integrations/{integration}/jobs", JOB),
    ("GET", "/integrations/{integration}/jobs", None),
    ("GET", "/integrations/{integration}/jobs/{job_id}", None),
    ("POST", "/integrations/{integration}/jobs/{job_id}/cancel", None),
]
CASES = [(method, path, body, "integration") for method, path, body in ROUTES] + [
    (method, path, body, name)
    for method, path, body in ROUTES
    for name in ("failure_id", "job_id")
    if "{" + name + "}" in path
]


def send(app: App, method: str, path: str, body: Any) -> httpx.Response:
    if isinstance(body, bytes):
        return app.http.request(method, path, content=body)
    return app.http.request(method, path, json=body)


@pytest.mark.parametrize(
    ("method", "template", "body", "parameter"), CASES, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CASES]
)
def test_a_malformed_id_in_the_route_is_a_400_naming_it_and_touches_no_storage(app, method, template, body, parameter):
    # Given the stored state, and ids that cannot be keys (or are not ids this API hands out)
    before = app.state()
    bad_values = BAD_INTEGRATIONS if parameter == "integration" else BAD_RECORDS
    for bad in bad_values:
        values = {"integration": KNOWN, "failure_id": ABSENT_RECORD, "job_id": ABSENT_RECORD, parameter: bad}
        # When one is sent in the route
        response = send(app, method, template.format(**values), body)

        # Then it is a 400 naming the parameter, not a 5xx from storage or an empty 200
        assert_refused(response, 400, "bad_parameter", parameter=parameter)
    # And nothing was written
    assert app.state() == before


# --- finding 4: instants that have no UTC, and instants that are not ISO 8601 ---------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("from", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
        ("to", "9999-12-31T23:59:59-14:00"),  # after year 9999 in UTC
        ("to", "0.5"),  # pydantic would read a unix timestamp
        ("from", "1700000000"),
        ("from", "2024-05-01"),  # a date is not an instant
        ("to", "2024-05-01 12:00:00"),
        ("from", "2024-02-30T00:00:00Z"),
        ("to", ""),
    ],
)
def test_an_instant_outside_utc_or_not_iso_8601_is_a_400_naming_the_parameter(app, parameter, value):
    before = app.state()
    for route in ("failures", "failures/count"):
        response = app.http.get(f"/integrations/{KNOWN}/{route}", params={parameter: value})
        assert_refused(response, 400, "bad_parameter", parameter=parameter)
    # The same instants in a job's frozen filter are field errors of the body
    job = {"action": "delete", "selection": {"filter": {parameter: value}}}
    response = app.http.post(f"/integrations/{KNOWN}/jobs", json=job)
    assert_refused(response, 422, "validation_error", field=f"selection.filter.{parameter}")
    assert app.state() == before


def test_the_widest_representable_range_is_accepted(app):
    response = app.http.get(
        f"/integrations/{KNOWN}/failures", params={"from": "0001-01-02T00:00:00+14:00", "to": "9999-12-30T23:59:59Z"}
    )
    assert response.status_code == 200, response.text


# --- finding 4: JSON bodies -------------------------------------------------------------------

JSON_ROUTES = [("PUT", f"/integrations/{KNOWN}"), ("POST", f"/integrations/{KNOWN}/jobs")]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_deeply_nested_json_is_refused_naming_the_body(app, method, path):
    before = app.state()
    # 30,000 levels fit under the 64 KiB cap and overflow the parser's recursion: a 400
    nested = b"[" * 30_000 + b"]" * 30_000
    response = app.http.request(method, path, content=nested, headers={"content-type": "application/json"})
    assert_refused(response, 400, "bad_request", field="body")
    # 100,000 levels are over the cap: refused unread with a 413
    nested = b"[" * 100_000 + b"]" * 100_000
    response = app.http.request(method, path, content=nested, headers={"content-type": "application/json"})
    assert_refused(response, 413, "payload_too_large", field="body")
    assert app.state() == before


def test_a_config_over_64_kib_is_a_413_before_it_is_parsed_or_stored(app):
    before = app.state()
    listed = app.http.get("/integrations").json()
    # Over the cap as sent (and not even JSON: it is refused before parsing)
    response = app.http.put(
        "/integrations/huge", content=b"{" + b" " * (64 * 1024), headers={"content-type": "application/json"}
    )
    assert_refused(response, 413, "payload_too_large", field="body")
    # Under the cap as sent, but over one Table property once stored (UTF-16): still the caller's 413
    config = {**CONFIG, "endpoint": {**ENDPOINT, "headers": {"X-Big": "b" * 40_000}}}
    response = app.http.put("/integrations/huge", json=config)
    assert_refused(response, 413, "payload_too_large", field="body")
    assert app.http.get("/integrations").json() == listed
    assert app.state() == before


def config_json(**changes: Any) -> bytes:
    return json.dumps({**CONFIG, **changes}).encode()


JSON_TYPE = "application/json"
HUGE_NUMBER = b"9" * 5000  # past Python's 4,300-digit limit for int()


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code", "field"),
    [
        ("text/plain", config_json(), 415, "unsupported_media_type", None),
        ("multipart/form-data", config_json(), 415, "unsupported_media_type", None),
        (JSON_TYPE, b"", 400, "bad_request", "body"),
        (JSON_TYPE, b"[]", 422, "validation_error", "body"),
        (JSON_TYPE, b'{"name": NaN}', 400, "bad_request", "body"),
        (JSON_TYPE, b'{"name": "n", "retry": {"linear_count": Infinity}}', 400, "bad_request", "body"),
        (JSON_TYPE, b'{"name": "n", "retry": {"linear_count": ' + HUGE_NUMBER + b"}}", 400, "bad_request", "body"),
        (JSON_TYPE, b"\xff\xfe{}", 400, "bad_request", "body"),
        (JSON_TYPE, config_json(retry={"linear_count": 10**30}), 422, "validation_error", "retry.linear_count"),
        (JSON_TYPE, config_json(retry={"linear_count": "4"}), 422, "validation_error", "retry.linear_count"),
        (JSON_TYPE, config_json(persist_failures="true"), 422, "validation_error", "persist_failures"),
        (JSON_TYPE, config_json(endpoint={"url": "https://x.example"}), 422, "validation_error", "endpoint"),
    ],
)
def test_a_hostile_config_body_is_a_4xx_naming_it_and_stores_nothing(app, content_type, body, status, code, field):
    before = app.state()
    response = app.http.put("/integrations/hostile", content=body, headers={"content-type": content_type})
    assert_refused(response, status, code, **({"field": field} if field else {"parameter": "Content-Type"}))
    assert app.state() == before


@pytest.mark.parametrize(
    ("selection", "field"),
    [
        ({"all": 1}, "selection.all"),
        ({"all": "true"}, "selection.all"),
        ({"ids": ["a/b"]}, "selection.ids[0]"),
        ({"ids": []}, "selection.ids"),
        ({"filter": {"sender": ""}}, "selection.filter.sender"),
        ({"filter": {"unknown": "x"}}, "selection.filter.unknown"),
        ({}, "selection"),
    ],
)
def test_a_hostile_job_selection_is_a_422_naming_the_field_and_starts_nothing(app, selection, field):
    before = app.state()
    response = app.http.post(f"/integrations/{KNOWN}/jobs", json={"action": "retry", "selection": selection})
    assert_refused(response, 422, "validation_error", field=field)
    assert app.state() == before


# --- finding 4: query strings -----------------------------------------------------------------


def _cursor(token: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=1&limit=2", "limit"),  # repeated: the host joins them ("1,2")
        ("limit=%FF", "limit"),  # invalid UTF-8
        ("limit=99999999999999999999999999", "limit"),
        ("limit=0", "limit"),
        ("limit=%D9%A5", "limit"),  # an Arabic-Indic five: int() would take it
        ("limit=", "limit"),
        ("origin=%FF", "origin"),
        ("origin=nowhere", "origin"),
        ("sender=", "sender"),
        ("cursor=%%%%", "cursor"),
        ("cursor=", "cursor"),
        (f"cursor={_cursor({'after': 'a/b'})}", "cursor"),  # well-formed, but a key we never hand out
        (f"cursor={_cursor([])}", "cursor"),
        ("cursor=" + base64.urlsafe_b64encode(b"[" * 1200 + b"]" * 1200).decode(), "cursor"),
        ("cursor=" + "A" * 5000, "cursor"),
        ("sendr=shop", "sendr"),  # a typo must not widen the selection to everything
    ],
)
def test_a_hostile_query_string_is_a_400_naming_the_parameter(app, query, parameter):
    before = app.state()
    response = app.http.get(f"/integrations/{KNOWN}/failures?{query}")
    assert_refused(response, 400, "bad_parameter", parameter=parameter)
    assert app.state() == before


@pytest.mark.parametrize(
    ("path", "query", "parameter"), [("/metrics", "window_minutes=", "window_minutes"), ("/integrations", "x=1", "x")]
)
def test_other_routes_refuse_empty_and_unknown_query_parameters(app, path, query, parameter):
    assert_refused(app.http.get(f"{path}?{query}"), 400, "bad_parameter", parameter=parameter)


# --- finding 5: jobs need an integration ------------------------------------------------------


def test_a_job_on_an_integration_that_does_not_exist_is_a_404_and_takes_no_lock(app):
    before = app.state()
    response = app.http.post("/integrations/nobody/jobs", json=JOB)
    assert_refused(response, 404, "integration_not_found", integration="nobody")
    assert app.state() == before
