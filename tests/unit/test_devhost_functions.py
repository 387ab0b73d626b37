"""devhost's start-up validation of an app's functions; pure (apps are built in the test)."""

from __future__ import annotations

from datetime import UTC

import azure.functions as func
import pytest

from devhost.errors import StartupError
from devhost.functions import (
    HttpFunction,
    QueueFunction,
    TimerFunction,
    discover_functions,
    validate_binding_names,
)

CONNECTION = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://x/y;"


def settings(**extra: str) -> dict[str, str]:
    return {"AzureWebJobsStorage": CONNECTION, "REBOUND_PREFIX": "", **extra}


def test_binding_name_without_matching_parameter_is_rejected():
    # Given
    def handler(message: func.QueueMessage) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="binding\\(s\\) msg have no parameter"):
        validate_binding_names("ingest", ["msg"], handler)


def test_parameter_without_binding_is_rejected():
    # Given
    def handler(req: func.HttpRequest, extra: str) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="parameter\\(s\\) extra .* have no binding"):
        validate_binding_names("api", ["req", "$return"], handler)


def test_matching_names_and_return_binding_are_accepted():
    # Given
    def handler(req: func.HttpRequest) -> str:
        return ""

    # When / Then
    validate_binding_names("api", ["req", "$return"], handler)


def test_app_with_mismatched_arg_name_fails_discovery():
    # Given
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="inbound", connection="AzureWebJobsStorage")
    def engine(message: func.QueueMessage) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="function 'engine': binding\\(s\\) msg"):
        discover_functions(app, settings(), UTC)


def test_http_function_gets_the_library_defaults_for_route_and_auth_level():
    # Given
    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

    @app.route(methods=["get"])
    def health(req: func.HttpRequest) -> str:
        return "ok"

    # When
    (function,) = discover_functions(app, settings(), UTC)

    # Then
    assert isinstance(function, HttpFunction)
    assert (function.route.text, function.methods, function.auth_level) == ("health", ("GET",), func.AuthLevel.FUNCTION)
    assert not function.is_async


@pytest.mark.parametrize(("prefix", "expected"), [("", "inbound"), ("t123", "t123inbound")])
def test_queue_name_expression_resolves_from_settings_even_when_empty(prefix, expected):
    # Given
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%inbound", connection="AzureWebJobsStorage")
    async def engine(msg: func.QueueMessage) -> None: ...

    # When
    (function,) = discover_functions(app, settings(REBOUND_PREFIX=prefix), UTC)

    # Then
    assert isinstance(function, QueueFunction)
    assert (function.queue_name, function.poison_queue_name) == (expected, f"{expected}-poison")
    assert function.connection_setting == "AzureWebJobsStorage"
    assert CONNECTION not in repr(function)
    assert function.is_async


def test_unresolvable_expression_names_the_missing_setting():
    # Given
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%RECOVERY_SCHEDULE%")
    def sweep(timer: func.TimerRequest) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="%RECOVERY_SCHEDULE% which is not set"):
        discover_functions(app, settings(), UTC)


def test_timer_schedule_resolves_and_parses():
    # Given
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%RECOVERY_SCHEDULE%", run_on_startup=True)
    def sweep(timer: func.TimerRequest) -> None: ...

    # When
    (function,) = discover_functions(app, settings(RECOVERY_SCHEDULE="0 */5 * * * *"), UTC)

    # Then
    assert isinstance(function, TimerFunction)
    assert (function.schedule.text, function.run_on_startup) == ("0 */5 * * * *", True)


def test_missing_connection_setting_is_a_startup_error():
    # Given
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="recovery", connection="RecoveryStorage")
    def recover(msg: func.QueueMessage) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="connection setting 'RecoveryStorage' is not set"):
        discover_functions(app, settings(), UTC)


def test_invalid_queue_name_is_rejected_and_upper_case_is_lowered():
    # Given
    bad, upper = func.FunctionApp(), func.FunctionApp()

    @bad.queue_trigger(arg_name="msg", queue_name="in_bound", connection="AzureWebJobsStorage")
    def first(msg: func.QueueMessage) -> None: ...

    @upper.queue_trigger(arg_name="msg", queue_name="Inbound", connection="AzureWebJobsStorage")
    def second(msg: func.QueueMessage) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="not a valid queue name"):
        discover_functions(bad, settings(), UTC)
    (function,) = discover_functions(upper, settings(), UTC)
    assert isinstance(function, QueueFunction)
    assert function.queue_name == "inbound"


def test_unsupported_trigger_type_is_a_startup_error():
    # Given
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="payloads/{name}", connection="AzureWebJobsStorage")
    def on_blob(blob: func.InputStream) -> None: ...

    # When / Then
    with pytest.raises(StartupError, match="trigger type 'blobTrigger' is not supported"):
        discover_functions(app, settings(), UTC)


def test_output_binding_is_a_startup_error():
    # Given
    app = func.FunctionApp()

    @app.route(route="send", methods=["POST"])
    @app.queue_output(arg_name="out", queue_name="inbound", connection="AzureWebJobsStorage")
    def send(req: func.HttpRequest, out: func.Out[str]) -> str:
        return ""

    # When / Then
    with pytest.raises(StartupError, match="binding 'out' of type 'queue' is not supported"):
        discover_functions(app, settings(), UTC)


def test_context_parameter_is_rejected_with_an_explanation():
    # Given
    app = func.FunctionApp()

    @app.route(route="ctx")
    def with_context(req: func.HttpRequest, context: func.Context) -> str:
        return ""

    # When / Then
    with pytest.raises(StartupError, match="func.Context"):
        discover_functions(app, settings(), UTC)
