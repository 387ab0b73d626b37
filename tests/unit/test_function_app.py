"""The app registers exactly the functions we expect, with bindings the real worker accepts."""

from __future__ import annotations

import inspect

import azure.functions as func

import function_app
from blueprints import api
from blueprints.api import functions_auth_level
from blueprints.operability import registered_operations
from shared.auth import RouteKind


def test_app_registers_exactly_the_expected_functions():
    names = {f.get_function_name() for f in _functions()}

    assert names == {
        "health",
        "openapi_document",
        "list_integrations",
        "get_integration",
        "put_integration",
        "delete_integration",
        "ingest",
        "ingest_message",
        "me",
        "list_audit",
        "portal_config",
        "deliver_inbound",
        "failures_overview",
        "list_failures",
        "count_failures",
        "get_failure",
        "failure_groups",
        "message_timeline",
        "failure_facets",
        "export_failures",
        "edit_retry_failure",
        "mute_failure_group",
        "unmute_failure_group",
        "start_job",
        "list_jobs",
        "get_job",
        "cancel_job",
        "run_job_page",
        "metrics",
        "portal",
        "portal_asset",
        "recovery_sweep",
        "retention_purge",
        "recovery_status",
        "recovery_replay",
        "pickup_sources",
        "get_pickup",
        "run_pickup",
        "pause_integration",
        "resume_integration",
        "get_control",
        "drain_held",
        "control_tick",
        "list_alert_rules",
        "get_alert_rule",
        "put_alert_rule",
        "delete_alert_rule",
        "test_alert_rule",
        "list_alerts",
        "alert_timer",
        "alert_event",
    }


def test_every_binding_names_a_parameter_of_its_function():
    for function in _functions():
        parameters = set(inspect.signature(function.get_user_function()).parameters)
        bindings = {b.name for b in function.get_bindings() if b.name != "$return"}
        assert bindings <= parameters, function.get_function_name()


def test_each_http_function_has_the_level_its_kind_takes_in_the_mode_the_app_was_loaded_in():
    # Given the app's HTTP functions and their declared operations
    levels = {
        f.get_function_name(): getattr(f.get_trigger(), "auth_level", None)
        for f in _functions()
        if f.is_http_function()
    }
    operations = registered_operations()

    # Then every HTTP function is a declared operation with the level of its kind in this mode
    assert set(levels) == {operation.name for operation in operations}
    for operation in operations:
        assert levels[operation.name] == func.AuthLevel(functions_auth_level(operation.kind, api.AUTH_MODE).value)
    # And the anonymous ones in every mode are the page, its files and sign-in config, health and the document
    public = {operation.name for operation in operations if operation.kind is RouteKind.PUBLIC}
    assert public == {"health", "openapi_document", "portal", "portal_asset", "portal_config"}
    assert {operation.name for operation in operations if operation.kind is RouteKind.INGEST} == {
        "ingest",
        "ingest_message",
    }


_cache: list[func.Function] = []


def _functions() -> list[func.Function]:
    # get_functions() may be called once per app object.
    if not _cache:
        _cache.extend(function_app.app.get_functions())
    return _cache
