"""The audit trail's pure parts and its service on the in-memory twin: what an entry holds, how big it may
be, which config fields a change names, how a job's selection is summarised, and the query filters."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.audit.models import SYSTEM_ACTOR, Actor, AuditAction, AuditFilter
from shared.audit.service import MAX_DETAILS_CHARS, AuditTrail, bounded, parse_audit_filter
from shared.auth import Principal, Role
from shared.config.service import changed_fields
from shared.errors import BadParameter
from shared.jobs.models import JobSelection, selection_summary
from tests.twins.audit import MemoryAuditStore
from tests.twins.clock import FakeTime

ADA = Actor(name="Ada Lovelace", id="oid-ada", auth="aad")


def test_an_actor_is_the_principal_without_its_roles():
    principal = Principal(name="Ada Lovelace", id="oid-ada", auth="aad", roles=frozenset({Role.ADMIN}))

    assert Actor.of(principal) == ADA
    assert SYSTEM_ACTOR.auth == "system"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, {"id": "o", "name": "O", "endpoint": {"url": "u"}}, ["endpoint", "name"]),
        (
            {"name": "O", "retry": {"linear_count": 3}},
            {"name": "O", "retry": {"linear_count": 7}},
            ["retry.linear_count"],
        ),
        ({"endpoint": {"headers": {}}}, {"endpoint": {"headers": {"X-Key": "secret"}}}, ["endpoint.headers.X-Key"]),
        ({"fallback_endpoint": None}, {"fallback_endpoint": {"url": "u"}}, ["fallback_endpoint"]),
        ({"error_rules": [1]}, {"error_rules": [1, 2]}, ["error_rules"]),
        ({"name": "O"}, {"name": "O"}, []),
    ],
)
def test_a_config_change_names_the_fields_that_changed_and_never_their_values(before, after, expected):
    assert changed_fields(before, after) == expected


def test_small_details_are_kept_and_large_ones_keep_only_their_keys():
    small = {"selection": {"ids": ["a"] * 10}, "total": 10}
    large = {"selection": {"q": "x" * MAX_DETAILS_CHARS}, "total": 1}

    assert bounded(small) == small
    assert bounded(large) == {"truncated": True, "keys": ["selection", "total"]}


def test_a_job_selection_is_kept_whole_but_a_long_id_list_is_counted():
    ids = [f"{i:016d}-{i:012x}" for i in range(25)]

    assert selection_summary(JobSelection(all=True)) == {"all": True}
    assert selection_summary(JobSelection.model_validate({"filter": {"from": "2026-01-01T00:00:00Z"}})) == {
        "filter": {"from": "2026-01-01T00:00:00Z"}
    }
    assert selection_summary(JobSelection(ids=ids[:3])) == {"ids": ids[:3]}
    summary = selection_summary(JobSelection(ids=ids))
    assert summary["ids_count"] == 25 and summary["ids_first"] == ids[:20]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"action": "config.nuke"}, "action"),
        ({"integration": "bad/id"}, "integration"),
        ({"actor": ""}, "actor"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_parameter(params, parameter):
    with pytest.raises(BadParameter) as refused:
        parse_audit_filter(params)

    assert refused.value.parameter == parameter


def test_the_filters_read_from_the_query_string():
    selection = parse_audit_filter({"action": "job.start", "actor": "ada", "from": "2026-01-01T00:00:00"})

    assert selection == AuditFilter(action=AuditAction.JOB_START, actor="ada", from_=datetime(2026, 1, 1, tzinfo=UTC))


async def test_record_stamps_the_entry_with_the_trails_clock_and_logs_it_without_details(caplog):
    # Given a trail on the twin
    time = FakeTime()
    store = MemoryAuditStore()
    audit = AuditTrail(store, retention_days=30, clock=time.now)

    # When an action is recorded
    with caplog.at_level(logging.INFO, logger="rebound.audit"):
        entry = await audit.record(ADA, AuditAction.JOB_CANCEL, integration="orders", target="job-1", details={"x": 1})

    # Then it is stored as given, at the trail's time, and the log line names the action, not the details
    assert store.entries() == [entry]
    assert (entry.at, entry.actor, entry.target, entry.details) == (time.now(), ADA, "job-1", {"x": 1})
    [line] = [r.getMessage() for r in caplog.records if "audit.recorded" in r.getMessage()]
    assert "action=job.cancel" in line and "actor_id=oid-ada" in line and "x=" not in line


@pytest.mark.parametrize("limit", [0, 501])
async def test_a_page_limit_outside_1_to_500_is_a_400(limit):
    audit = AuditTrail(MemoryAuditStore(), retention_days=30)

    with pytest.raises(BadParameter) as refused:
        await audit.page(AuditFilter(), limit=limit)

    assert refused.value.parameter == "limit"


async def test_purge_removes_what_is_older_than_the_retention():
    time = FakeTime()
    audit = AuditTrail(MemoryAuditStore(), retention_days=30, clock=time.now)
    await audit.record(ADA, AuditAction.CONFIG_DELETE, integration="a", at=time.now() - timedelta(days=31))
    kept = await audit.record(ADA, AuditAction.CONFIG_DELETE, integration="b", at=time.now() - timedelta(days=29))

    assert await audit.purge(now=time.now()) == 1
    assert (await audit.page(AuditFilter())).items == [kept]


def test_the_portals_action_filter_offers_every_action_the_trail_records():
    # Given the actions the portal's Audit page lists (portal/js/route.js)
    route_js = (Path(__file__).resolve().parents[2] / "portal" / "js" / "route.js").read_text(encoding="utf-8")
    found = re.search(r"export const AUDIT_ACTIONS = (\[[^\]]*\]);", route_js)
    assert found is not None

    # Then they are exactly the actions, in the order the model declares them
    assert json.loads(found.group(1)) == [action.value for action in AuditAction]
