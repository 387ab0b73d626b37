"""Integration config and health handlers on the twins (ported from tests/integration/test_config_api.py)."""

from __future__ import annotations

import json

from blueprints import integrations, operability
from shared.errors import StorageUnavailable
from tests.twins.stores import MemoryStores
from tests.unit.blueprints.calls import body_of, request

CONFIG = {"name": "Orders", "endpoint": {"kind": "http", "url": "https://receiver.example/in"}}


def put(integration: str, body: object) -> object:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("PUT", f"integrations/{integration}", body=data, integration=integration)


async def test_health_reports_every_dependency_healthy(services):
    response = await operability.health(request("GET", "health"))

    body = body_of(response)
    assert response.status_code == 200 and body["status"] == "healthy"
    assert {d["name"] for d in body["dependencies"]} == {
        "storage.queues",
        "storage.tables",
        "storage.blobs",
        "recovery.queues",
    }


async def test_health_is_503_naming_the_dependency_that_does_not_answer(services, stores: MemoryStores):
    stores.payloads.arm("ping", StorageUnavailable("https://account.blob.core.windows.net/?sig=secret"))

    response = await operability.health(request("GET", "health"))

    body = body_of(response)
    assert response.status_code == 503 and body["status"] == "unhealthy"
    [down] = [d for d in body["dependencies"] if not d["ok"]]
    assert down["name"] == "storage.blobs" and "secret" not in response.get_body().decode()


async def test_put_creates_then_replaces_and_get_returns_the_config(services):
    first = await integrations.put_integration(put("orders", CONFIG))
    second = await integrations.put_integration(put("orders", {**CONFIG, "retry": {"linear_count": 7}}))
    got = await integrations.get_integration(request("GET", "integrations/orders", integration="orders"))

    assert (first.status_code, second.status_code, got.status_code) == (201, 200, 200)
    assert body_of(got)["retry"]["linear_count"] == 7


async def test_invalid_config_is_422_naming_the_field_and_nothing_is_stored(services, stores: MemoryStores):
    bad = {**CONFIG, "retry": {"mode": "linear", "linear_count": 12}}

    response = await integrations.put_integration(put("orders", bad))
    missing = await integrations.get_integration(request("GET", "integrations/orders", integration="orders"))

    assert response.status_code == 422
    assert body_of(response)["error"]["details"]["fields"][0]["field"] == "retry.linear_count"
    assert missing.status_code == 404 and stores.integrations.calls["put"] == 0


async def test_body_id_that_disagrees_with_the_route_is_422_on_id(services):
    response = await integrations.put_integration(put("orders", {**CONFIG, "id": "other"}))

    assert response.status_code == 422
    assert body_of(response)["error"]["details"]["fields"] == [
        {"field": "id", "message": "must equal the integration in the route ('orders')"}
    ]


async def test_malformed_json_is_400(services):
    response = await integrations.put_integration(put("orders", b"{nope"))

    assert response.status_code == 400 and body_of(response)["error"]["code"] == "bad_request"


async def test_list_and_delete(services):
    await integrations.put_integration(put("a", CONFIG))
    await integrations.put_integration(put("b", CONFIG))

    deleted = await integrations.delete_integration(request("DELETE", "integrations/a", integration="a"))
    again = await integrations.delete_integration(request("DELETE", "integrations/a", integration="a"))
    listed = await integrations.list_integrations(request("GET", "integrations"))

    assert (deleted.status_code, again.status_code) == (204, 404)
    assert [c["id"] for c in body_of(listed)["items"]] == ["b"]
