"""Run the real Rebound app (function_app.py at the project root) in devhost for e2e tests.

The hosts run in `AUTH_MODE=dev`, as `make run` does: devhost plays Easy Auth for the dev users
(`tests.support.auth.DEV_USERS`, one per role and one without), and `client()` calls as the admin
(`Authorization: Bearer dev:admin`) with the host key (which opens both ingest routes). A test about
who may call picks its own headers; a test about something else never notices the sign-in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

from devtools.azurite import PROJECT_DIR, AzuriteProcess
from devtools.process import DevhostProcess
from tests.support.auth import DEV_USERS

FUNCTION_KEY = "e2e-key"
#: What every test client sends: the host key (ingest) and the admin's sign-in (everything else).
DEFAULT_HEADERS = {"x-functions-key": FUNCTION_KEY, "Authorization": "Bearer dev:admin"}

#: Seconds-scale retry settings so timing tests take seconds, not minutes.
FAST_SETTINGS = {
    "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
    # As `make run`: devhost plays Easy Auth for one dev user per role (and one with none).
    "AUTH_MODE": "dev",
    "DEVHOST_USERS": json.dumps(DEV_USERS),
    "DEVHOST_QUEUE_LEASE_S": "20",
    "ENDPOINT_RETRY_MAX_ATTEMPTS": "2",
    "ENDPOINT_RETRY_BASE_DELAY_S": "0.05",
    "ENDPOINT_RETRY_WINDOW_S": "10",
    "STORAGE_TIMEOUT_S": "5",
    # Timer schedules are %NAME% expressions the host must resolve; tests never read local.settings.json.
    "RECOVERY_SCHEDULE": "0 */5 * * * *",
    "RETENTION_SCHEDULE": "0 17 * * * *",
    "PICKUP_SCHEDULE": "*/15 * * * * *",
    "CONTROL_SCHEDULE": "*/10 * * * * *",
    "ALERT_SCHEDULE": "0 * * * * *",
    # Test receivers listen on 127.0.0.1; tests/security runs hosts with this off.
    "ALLOW_PRIVATE_ENDPOINTS": "true",
}


def app_env(azurite: AzuriteProcess, prefix: str, **overrides: str) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "RecoveryStorage": azurite.connection_string,
        "REBOUND_PREFIX": prefix,
        **FAST_SETTINGS,
        **overrides,
    }


def unique_prefix() -> str:
    return "e" + uuid.uuid4().hex[:10]


@contextmanager
def running_app(env: Mapping[str, str]) -> Iterator[DevhostProcess]:
    host = DevhostProcess(PROJECT_DIR, env=env, use_local_settings=False)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def client(host: DevhostProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=host.base_url, headers=DEFAULT_HEADERS, timeout=30, trust_env=False)
