"""kit.telemetry: what tracing costs when nothing exports, and how traces are sampled."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from kit import server, telemetry
from kit.config import ConfigError, TelemetrySettings


def _names(interceptors) -> list[str]:
    return [type(i).__name__ for i in interceptors]


def test_without_an_sdk_tracer_the_server_adds_no_tracing_interceptor(monkeypatch):
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())
    assert not telemetry.tracing()
    assert "OpenTelemetryAioServerInterceptor" not in _names(server.interceptors(None))
    assert _names(server.interceptors(None)) == ["CallInterceptor"]


def test_with_an_sdk_tracer_the_server_traces_every_call_outermost(monkeypatch):
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    assert telemetry.tracing()
    names = _names(server.interceptors(None))
    assert names[0] == "OpenTelemetryAioServerInterceptor"
    assert names[1:] == ["CallInterceptor"]


def _parent(sampled: bool):
    context = SpanContext(
        trace_id=0xAB,
        span_id=0xCD,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(context))


def test_sampling_follows_the_caller_and_samples_new_traces_by_ratio():
    never = ParentBased(telemetry.RequestRoots(0.0))
    always = ParentBased(telemetry.RequestRoots(1.0))
    # A caller's decision wins over the ratio, both ways.
    assert never.should_sample(_parent(True), 0xAB, "x", SpanKind.SERVER).decision == (
        Decision.RECORD_AND_SAMPLE
    )
    assert always.should_sample(_parent(False), 0xAB, "x", SpanKind.SERVER).decision == (
        Decision.DROP
    )
    assert never.should_sample(None, 0xAB, "x", SpanKind.SERVER).decision == Decision.DROP
    assert always.should_sample(None, 0xAB, "x", SpanKind.CONSUMER).decision == (
        Decision.RECORD_AND_SAMPLE
    )


def test_a_background_client_call_never_starts_a_trace():
    always = ParentBased(telemetry.RequestRoots(1.0))
    assert always.should_sample(None, 0xAB, "GET", SpanKind.CLIENT).decision == Decision.DROP
    assert always.should_sample(_parent(True), 0xAB, "GET", SpanKind.CLIENT).decision == (
        Decision.RECORD_AND_SAMPLE
    )


def test_the_sample_ratio_comes_from_the_environment_and_is_checked():
    settings = TelemetrySettings.from_env("order", {"EMPORIUM_TRACE_SAMPLE_RATIO": "0.25"})
    assert settings.sample_ratio == 0.25
    with pytest.raises(ConfigError):
        TelemetrySettings.from_env("order", {"EMPORIUM_TRACE_SAMPLE_RATIO": "2"})


def test_without_an_endpoint_setup_installs_nothing():
    assert telemetry.setup(TelemetrySettings("order")) is None
    assert not telemetry.exporting()


def test_gauges_keep_the_latest_value_per_attribute_set():
    telemetry.set_gauge("emporium.queue.depth", 3, queue="q")
    telemetry.set_gauge("emporium.queue.depth", 5, queue="q")
    observed = telemetry._observe("emporium.queue.depth")(None)
    assert [(o.value, dict(o.attributes)) for o in observed if o.attributes == {"queue": "q"}] == [
        (5, {"queue": "q"})
    ]


def test_a_cassandra_span_names_the_statement_without_its_values():
    from cassandra.query import BatchStatement, SimpleStatement

    from kit.cassandra import _cql

    assert _cql("SELECT * FROM orders WHERE id = %s") == "SELECT * FROM orders WHERE id = %s"
    assert _cql(SimpleStatement("UPDATE t SET a = ?")) == "UPDATE t SET a = ?"
    assert _cql(BatchStatement()) == "BATCH"
