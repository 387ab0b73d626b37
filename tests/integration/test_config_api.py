"""Integration config and health handlers, called directly (no host), against Azurite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import azure.functions as func
import pytest

from blueprints import integrations, operability
from shared.services import reset_services
from tests.support.auth import ADMIN_HEADERS, as_devhost


@pytest.fixture(autouse=True)
async def app_env(monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]) -> AsyncIterator[None]:
    for name, value in storage_env.items():
        monkeypatch.setenv(name, value)
    # Called as devhost would call them, for its admin (who may call is tests/unit/blueprints/test_api.py's).
    as_devhost(monkeypatch)
    yield
    await reset_services()


def request(method: str, path: str, body: object = None, **route_params: str) -> func.HttpRequest:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return func.HttpRequest(
        method, f"http://localhost/api/{path}", body=data, route_params=route_params, headers=ADMIN_HEADERS
    )


CONFIG = {"name": "Orders", "endpoint": {"kind": "http", "url": "http://127.0.0.1:9/in"}}


async def test_health_reports_every_dependency_healthy():
    response = await operability.health(request("GET", "health"))

    body = json.loads(response.get_body())
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert {d["name"] for d in body["dependencies"]} == {
        "storage.queues",
        "storage.tables",
        "storage.blobs",
        "recovery.queues",
    }


async def test_put_creates_then_replaces_and_get_returns_the_config():
    first = await integrations.put_integration(request("PUT", "integrations/orders", CONFIG, integration="orders"))
    second = await integrations.put_integration(
        request("PUT", "integrations/orders", {**CONFIG, "retry": {"linear_count": 7}}, integration="orders")
    )
    got = await integrations.get_integration(request("GET", "integrations/orders", integration="orders"))

    assert (first.status_code, second.status_code, got.status_code) == (201, 200, 200)
    assert json.loads(got.get_body())["retry"]["linear_count"] == 7


async def test_invalid_config_is_422_naming_the_field_and_nothing_is_stored():
    bad = {**CONFIG, "retry": {"mode": "linear", "linear_count": 12}}

    response = await integrations.put_integration(request("PUT", "integrations/orders", bad, integration="orders"))
    missing = await integrations.get_integration(request("GET", "integrations/orders", integration="orders"))

    assert response.status_code == 422
    assert json.loads(response.get_body())["error"]["details"]["fields"][0]["field"] == "retry.linear_count"
    assert missing.status_code == 404


async def test_body_id_that_disagrees_with_the_route_is_422_on_id():
    response = await integrations.put_integration(
        request("PUT", "integrations/orders", {**CONFIG, "id": "other"}, integration="orders")
    )

    assert response.status_code == 422
    assert json.loads(response.get_body())["error"]["details"]["fields"] == [
        {"field": "id", "message": "must equal the integration in the route ('orders')"}
    ]


async def test_malformed_json_is_400():
    response = await integrations.put_integration(request("PUT", "integrations/orders", b"{nope", integration="orders"))

    assert response.status_code == 400
    assert json.loads(response.get_body())["error"]["code"] == "bad_request"


async def test_list_and_delete():
    await integrations.put_integration(request("PUT", "integrations/a", CONFIG, integration="a"))
    await integrations.put_integration(request("PUT", "integrations/b", CONFIG, integration="b"))

    deleted = await integrations.delete_integration(request("DELETE", "integrations/a", integration="a"))
    again = await integrations.delete_integration(request("DELETE", "integrations/a", integration="a"))
    listed = await integrations.list_integrations(request("GET", "integrations"))

    assert (deleted.status_code, again.status_code) == (204, 404)
    assert [c["id"] for c in json.loads(listed.get_body())["items"]] == ["b"]
