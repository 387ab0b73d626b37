"""OpenTelemetry: traces from ingest through the engine to each delivery attempt.

With APPLICATIONINSIGHTS_CONNECTION_STRING set, `configure_telemetry` installs the Azure
Monitor distro once per process (traces, metrics and logs of the `rebound` loggers go to
Application Insights). Without it nothing is installed and the OpenTelemetry API is a no-op,
so spans cost next to nothing locally.

An envelope carries its W3C `traceparent`, so the engine's span for a message continues the
trace its ingest started, across the queue and across requeues.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import propagate, trace
from opentelemetry.context import Context

logger = logging.getLogger("rebound.telemetry")

tracer = trace.get_tracer("rebound")

_configured = False
_lock = threading.Lock()


def configure_telemetry(connection_string: str | None) -> bool:
    """Send telemetry to Application Insights when a connection string is set; True if installed now."""
    global _configured
    if not connection_string:
        return False
    with _lock:
        if _configured:
            return False
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(connection_string=connection_string, logger_name="rebound")
        _configured = True
    logger.info("telemetry: exporting to Application Insights")
    return True


def current_traceparent() -> str | None:
    """The active span as a W3C traceparent, to travel inside an envelope (None when not tracing)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    return propagate.extract({"traceparent": traceparent}) if traceparent else None
