"""Every setting the code reads is in local.settings.sample.json and documented in docs/settings.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import RECOVERY_STORAGE_SETTING, STORAGE_SETTING, Settings

ROOT = Path(__file__).resolve().parents[2]
DEVHOST_SETTINGS = (
    "DEVHOST_FUNCTION_KEY",
    "DEVHOST_FUNCTION_KEYS",
    "DEVHOST_USERS",
    "DEVHOST_QUEUE_LEASE_S",
    "DEVHOST_PROGRESS_S",
)


def setting_names() -> list[str]:
    aliases = [str(field.validation_alias) for field in Settings.model_fields.values()]
    return [*aliases, STORAGE_SETTING, RECOVERY_STORAGE_SETTING, *DEVHOST_SETTINGS]


@pytest.mark.parametrize("name", setting_names())
def test_setting_has_a_local_default_in_the_sample(name):
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]

    assert name in values


@pytest.mark.parametrize("name", setting_names())
def test_setting_is_documented_in_the_settings_table(name):
    assert f"| `{name}` |" in (ROOT / "docs" / "settings.md").read_text()


def test_sample_values_build_valid_settings():
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]

    settings = Settings.from_env(values)

    assert settings.prefix == values["REBOUND_PREFIX"]
