"""IntegrationStore contract: put creates or replaces, get, delete, list."""

from __future__ import annotations

from shared.config.models import IntegrationConfig
from shared.config.ports import IntegrationStore


def make_config(integration: str, **overrides: object) -> IntegrationConfig:
    data: dict[str, object] = {
        "id": integration,
        "name": integration.title(),
        "endpoint": {"kind": "http", "url": "https://receiver.example/in"},
    }
    data.update(overrides)
    return IntegrationConfig.model_validate(data)


async def test_put_says_whether_it_created_and_get_reads_the_latest(integration_store: IntegrationStore):
    created = await integration_store.put(make_config("orders"))
    replaced = await integration_store.put(make_config("orders", name="Orders v2", persist_failures=False))

    found = await integration_store.get("orders")

    assert (created, replaced) == (True, False)
    assert found == make_config("orders", name="Orders v2", persist_failures=False)
    assert await integration_store.get("billing") is None


async def test_delete_says_whether_the_config_existed(integration_store: IntegrationStore):
    await integration_store.put(make_config("orders"))

    assert await integration_store.delete("orders") is True
    assert await integration_store.delete("orders") is False
    assert await integration_store.get("orders") is None


async def test_list_holds_every_config_by_id(integration_store: IntegrationStore):
    for integration in ("orders", "billing", "crm"):
        await integration_store.put(make_config(integration))

    listed = [config.id async for config in integration_store.list()]

    assert listed == ["billing", "crm", "orders"]
