"""The OpenAPI document and the validation agree (issue 13, finding 8), checked by schemathesis.

Every API operation of the document gets schema-valid (positive) and schema-violating (negative)
requests from the examples, coverage and fuzzing phases, sent to devhost and Azurite running as
real processes, and every response goes through all of schemathesis's checks: no 5xx, statuses,
content types, headers and bodies as documented, negative data refused with a 4xx, positive data
accepted, requests without the function key refused. The run is derandomized with a fixed seed and
a bounded example count, so CI sees the same cases every time.

Not exercised: the portal's static files (`/portal`, `/portal/{asset}`): HTML, scripts and styles
served from disk, not JSON validated by the models (tests/unit/test_ui.py covers them); the timers
are not HTTP operations and are not in the document.

Four kinds of rules cannot be written in JSON Schema, so positive cases are made to keep them
(negative cases are left alone; they are refused either way):
- one field bounded by another: `to` not before `from`, `requeue_max_delay_seconds` (given, or its
  default) not below `requeue_min_delay_seconds`, `status_max` not below `status_min`, a `redirect` rule
  needs a `fallback_endpoint`, a blob source's `move_to` outside its `prefix`, an SFTP `move_to` other
  than its `path`;
- the body's `id` must equal the route's integration;
- a `cursor` is whatever the previous page returned: any other string is a 400;
- what only the app knows: an SFTP `host_key` must be a real public key (its shape is in the schema),
  and the settings an SFTP source names for its credentials must be allowlisted (ENDPOINT_SECRET_SETTINGS,
  here `SFTP_SECRET`). The host runs with MIN_PICKUP_INTERVAL_S at the schema's minimum (1).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import asyncssh
import httpx
import pytest
import schemathesis
from schemathesis import Case, HookContext
from schemathesis.core.parameters import ParameterLocation

from blueprints.operability import api_document
from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.config.models import BackoffPolicy
from tests.e2e.app_host import FUNCTION_KEY, app_env, running_app, unique_prefix

#: Cases per operation and phase: ~20 operations, the whole file well within 90 s on 2 cores. A deeper
#: or different run, locally: CONTRACT_MAX_EXAMPLES=500 CONTRACT_SEED=7 pytest tests/security/test_openapi_contract.py
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "40"))
SEED = int(os.environ.get("CONTRACT_SEED", "13"))

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {"enabled": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "auth": {"openapi": {"signedIn": {"bearer": "dev:admin"}, "functionKeyHeader": {"api_key": FUNCTION_KEY}}},
    }
)

# One worker runs every operation against one devhost; a slow 2-core CI gets room beyond the 60 s default.
pytestmark = [pytest.mark.xdist_group("openapi_contract"), pytest.mark.timeout(300)]

schema = schemathesis.openapi.from_dict(api_document(), config=CONFIG).exclude(path_regex="^/portal")


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    # A generous storage timeout: a 503 here should mean a real outage, not a busy 2-core machine.
    env = app_env(
        azurite,
        unique_prefix(),
        STORAGE_TIMEOUT_S="30",
        ALLOW_PRIVATE_ENDPOINTS="true",
        MIN_PICKUP_INTERVAL_S="1",
        ENDPOINT_SECRET_SETTINGS=SFTP_SECRET,
        # The sources it saves name hosts and connections that do not exist: the timer need not try them.
        PICKUP_SCHEDULE="0 0 0 1 1 *",
        CONTROL_SCHEDULE="0 0 0 1 1 *",
        ALERT_SCHEDULE="0 0 0 1 1 *",
    )
    with running_app(env) as host:
        yield host


# --- positive cases keep the rules JSON Schema cannot state -----------------------------------

DEFAULT_MAX_DELAY_S = BackoffPolicy().requeue_max_delay_seconds


def _ordered(values: dict[str, Any], low: str, high: str) -> None:
    a, b = values.get(low), values.get(high)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if numbers and a > b:  # type: ignore[operator]  # both are numbers here
        values[low], values[high] = b, a


def _ordered_instants(values: dict[str, Any]) -> None:
    """Swap `from` and `to` when `to` is earlier (offsets may differ, so compare instants, not text)."""
    try:
        start, end = (datetime.fromisoformat(str(values[key]).upper()) for key in ("from", "to"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        if start > end:
            values["from"], values["to"] = values["to"], values["from"]
    except (KeyError, ValueError, OverflowError):
        pass  # absent, or not an instant: nothing to order


#: The one setting an SFTP source may name for its credentials in this host, and a key its `host_key` may pin.
SFTP_SECRET = "SFTP_SECRET"
SFTP_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()


def _keep_source_rules(source: dict[str, Any]) -> None:
    kind = source.get("kind")
    if kind == "blob" and source.get("after") == "move":
        prefix, move_to = source.get("prefix", ""), source.get("move_to", "processed/")
        if isinstance(prefix, str) and isinstance(move_to, str) and prefix.startswith(move_to):
            source["move_to"] = f"{prefix}_done/"
    if kind != "sftp":
        return
    if isinstance(source.get("host_key"), str) and not source["host_key"].startswith("SHA256:"):
        source["host_key"] = SFTP_HOST_KEY
    for name in ("password_setting", "private_key_setting"):
        if isinstance(source.get(name), str):
            source[name] = SFTP_SECRET
    if source.get("after") == "move" and str(source.get("move_to", "/archive")).rstrip("/") == str(
        source.get("path", "/")
    ).rstrip("/"):
        source["move_to"] = f"{str(source.get('path', '/')).rstrip('/')}/archive"


def _keep_config_rules(body: dict[str, Any], integration: Any) -> None:
    if "id" in body:
        body["id"] = integration
    if isinstance(body.get("source"), dict):
        _keep_source_rules(body["source"])
    backoff = body.get("retry", {}).get("backoff") if isinstance(body.get("retry"), dict) else None
    if isinstance(backoff, dict):
        _ordered(backoff, "requeue_min_delay_seconds", "requeue_max_delay_seconds")
        # A maximum left out is its default, which the minimum must not exceed either.
        low = backoff.get("requeue_min_delay_seconds")
        if "requeue_max_delay_seconds" not in backoff and isinstance(low, int | float) and low > DEFAULT_MAX_DELAY_S:
            backoff["requeue_max_delay_seconds"] = low
    rules = body.get("error_rules")
    if isinstance(rules, list):
        for rule in rules:
            if isinstance(rule, dict):
                _ordered(rule, "status_min", "status_max")
        if body.get("fallback_endpoint") is None:
            body["error_rules"] = [r for r in rules if not (isinstance(r, dict) and r.get("action") == "redirect")]


#: The request line a host takes: Kestrel (the Functions host) and aiohttp (devhost) both stop near 8 KiB and
#: answer with their own error before the app runs. Filters of 200 characters, percent-encoded as 4-byte
#: UTF-8, can pass that; such a request never reaches Rebound, so it does not test Rebound's contract.
MAX_REQUEST_LINE_BYTES = 8000


@schema.hook("filter_case")
def fits_a_request_line(context: HookContext, case: Case) -> bool:
    path = quote(case.formatted_path, safe="/")
    query = urlencode(case.query or {}, doseq=True)
    return len(path) + len(query) < MAX_REQUEST_LINE_BYTES


@schema.hook("map_case")
def keep_rules_json_schema_cannot_state(context: HookContext, case: Case) -> Case:
    meta = case.meta
    if meta is None:
        return case
    # Copies: the coverage phase shares one generated container between several cases.
    if isinstance(case.query, dict) and not meta.is_negative_at(ParameterLocation.QUERY):
        case.query = copy.deepcopy(case.query)
        _ordered_instants(case.query)
        case.query.pop("cursor", None)
    if isinstance(case.body, dict) and not meta.is_negative_at(ParameterLocation.BODY):
        case.body = copy.deepcopy(case.body)
        if case.operation.label == "PUT /integrations/{integration}":
            _keep_config_rules(case.body, case.path_parameters.get("integration"))
        selection = case.body.get("selection")
        if isinstance(selection, dict):
            selection_filter = selection.get("filter")
            if isinstance(selection_filter, dict):
                _ordered_instants(selection_filter)
    return case


# --- the tests --------------------------------------------------------------------------------


def test_served_document_is_the_one_under_test(host: DevhostProcess) -> None:
    # Given the app running in devhost
    # When its OpenAPI document is fetched
    served = httpx.get(f"{host.base_url}/openapi.json", timeout=30, trust_env=False)

    # Then it is the document the contract test generates its cases from
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(api_document()))


@schema.parametrize()
def test_every_operation_answers_as_its_openapi_document_says(case: Case, host: DevhostProcess) -> None:
    case.call_and_validate(base_url=host.base_url)
