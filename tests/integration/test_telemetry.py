"""Telemetry: one trace from ingest through the engine to each delivery attempt, and the counters."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.config.models import IntegrationConfig
from shared.delivery.engine import DeliveryEngine
from shared.delivery.ingest import IncomingMessage
from shared.messages.wire import parse_envelope
from shared.services import Services
from shared.values import utc_now
from tests.support.stores import azure_stores
from tests.twins.senders import OneSender, ScriptedSender, ok, status

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracing() -> None:
    # The global provider can be set once per process; later tests in this worker share it.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


def engine_for(services: Services, sender: ScriptedSender) -> DeliveryEngine:
    engine = services.engine
    engine._senders = OneSender(sender)
    return engine


async def test_one_trace_spans_ingest_the_engine_and_every_delivery_attempt(services):
    # Given an integration and a receiver that fails once, then accepts
    await services.stores.integrations.put(
        IntegrationConfig.model_validate(
            {"id": "traced", "name": "t", "endpoint": {"kind": "http", "url": "http://x/"}}
        )
    )
    _EXPORTER.clear()

    # When a message is ingested and then processed from the queue
    azure = azure_stores(services)
    accepted = await services.ingest.accept(IncomingMessage("traced", b"{}", "application/json", {}), now=utc_now())
    [message] = await azure.account.queues.receive(azure.names.inbound)
    envelope = parse_envelope(message.body, fallback_id=message.id)
    await engine_for(services, ScriptedSender([status(503), ok()])).process(envelope)

    # Then ingest, process and both attempts share one trace, nested in that order
    spans = {span.name: span for span in _EXPORTER.get_finished_spans()}
    ingest, process = spans["rebound.ingest"], spans["rebound.process"]
    attempts = [s for s in _EXPORTER.get_finished_spans() if s.name == "rebound.deliver"]
    assert envelope.traceparent is not None and accepted.envelope.traceparent == envelope.traceparent
    assert {s.context.trace_id for s in (ingest, process, *attempts)} == {ingest.context.trace_id}
    assert process.parent is not None and process.parent.span_id == ingest.context.span_id
    assert [a.parent.span_id for a in attempts if a.parent] == [process.context.span_id] * 2
    assert process.attributes is not None and process.attributes["rebound.message_id"] == envelope.id
    assert [a.attributes["rebound.verdict"] for a in attempts if a.attributes] == ["transient", "success"]


async def test_engine_decisions_are_counted_per_integration(services):
    await services.stores.integrations.put(
        IntegrationConfig.model_validate(
            {"id": "counted", "name": "c", "endpoint": {"kind": "http", "url": "http://x/"}}
        )
    )
    before = services.metrics.snapshot().integrations.get("counted")
    assert before is None

    engine = engine_for(services, ScriptedSender([status(503), ok()]))
    await engine.process(parse_envelope(b'{"integration": "counted", "body_text": "a"}', fallback_id="m1"))
    engine._senders = OneSender(ScriptedSender([status(400)]))
    await engine.process(parse_envelope(b'{"integration": "counted", "body_text": "b"}', fallback_id="m2"))

    counts = services.metrics.snapshot().integrations["counted"].since_start
    assert counts["received"] == 2
    assert counts["delivered"] == 1
    assert counts["endpoint_retries"] == 1
    assert counts["failures_endpoint"] == 1
