"""The app registers exactly the functions we expect, with bindings the real worker accepts."""

from __future__ import annotations

import inspect

import azure.functions as func

import function_app


def test_app_registers_exactly_the_expected_functions():
    names = {f.get_function_name() for f in _functions()}

    assert names == {
        "health",
        "openapi_document",
        "list_integrations",
        "get_integration",
        "put_integration",
        "delete_integration",
        "ingest_message",
        "deliver_inbound",
        "failures_overview",
        "list_failures",
        "count_failures",
        "get_failure",
        "failure_groups",
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


def test_only_health_the_openapi_document_and_the_portal_files_are_anonymous():
    anonymous = {
        f.get_function_name()
        for f in _functions()
        if getattr(f.get_trigger(), "auth_level", None) == func.AuthLevel.ANONYMOUS
    }

    # The portal's files hold no data; the page sends the key with every API call it makes.
    assert anonymous == {"health", "openapi_document", "portal", "portal_asset"}


_cache: list[func.Function] = []


def _functions() -> list[func.Function]:
    # get_functions() may be called once per app object.
    if not _cache:
        _cache.extend(function_app.app.get_functions())
    return _cache
