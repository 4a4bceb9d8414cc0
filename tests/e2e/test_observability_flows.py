"""Observability end to end (issue 14) on the whole stack, through Envoy:

1. one order placed over REST is one trace, started by the gateway, with spans from order,
   catalog, payment and shipping linked across RabbitMQ; GetTrace returns it with parent links,
   and SearchLogs by its trace id finds log lines of at least three services;
2. a declined payment is found by service and minimum severity WARNING;
3. OpenSearch stopped (SIGSTOP) for 30 s: the services keep serving at their usual latency,
   and what the logging service accepted meanwhile is indexed once it is back;
4. the index templates, retention policy and data streams exist as the README documents.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit.config import OpenSearchSettings
from tests.e2e.checkout_support import (
    SERVICES,
    Shopper,
    admin_headers,
    ok,
    product,
    shipping_option,
)

SAGA = ("gateway", "order", "catalog", "payment", "shipping")
# The services whose event consumers must show up in the trace (linked across RabbitMQ).
CONSUMERS = ("payment", "shipping", "catalog")
PLACE_ORDER = "/emporium.order.v1.OrderService/PlaceOrder"


@pytest.fixture(scope="module")
def api(gateway_url, service_address):
    for name in (*SERVICES, "logging"):
        service_address(name)
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    return admin_headers(api)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _poll(check, seconds: float = 90.0, every: float = 1.0):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)


def _delivered_order(api, admin, *, card: str = "tok_visa") -> tuple[Shopper, dict[str, Any]]:
    shopper = Shopper(api)
    method = shopper.card(card)
    teapot = product(api, admin, stock=5)
    option = shipping_option(api, teapot["id"])
    placed = ok(
        shopper.place(
            items=[{"product_id": teapot["id"], "quantity": 1}],
            shipping_option_id=option,
            payment_method_id=method,
        )
    )
    return shopper, placed


def _trace_of_place_order(api, admin, since: datetime) -> dict[str, Any] | None:
    """The newest trace since `since` with a PlaceOrder span, with every saga service in it
    and a consumer span of each of CONSUMERS (each service exports its spans in its own
    batches, so a trace fills in over a few seconds)."""
    found = ok(
        api.get(
            "/v1/traces",
            params={"service": "order", "span_name": PLACE_ORDER, "start_time": _rfc3339(since)},
            headers=admin,
        )
    ).get("traces", [])
    if not found:
        return None
    whole = ok(api.get(f"/v1/traces/{found[0]['trace_id']}", headers=admin))
    if not set(SAGA) <= set(whole.get("services", [])):
        return None
    return (
        whole if all(_linked_consumer(whole["spans"], service) for service in CONSUMERS) else None
    )


def _linked_consumer(spans: list[dict[str, Any]], service: str) -> bool:
    """Whether `service` has a consumer span that is the child of another service's producer
    span (the relay that published the event): the trace crosses RabbitMQ into it."""
    by_id = {s["span_id"]: s for s in spans}
    for span in spans:
        if span["service"] == service and span["kind"] == "KIND_CONSUMER":
            parent = by_id.get(span.get("parent_span_id", ""))
            if parent and parent["kind"] == "KIND_PRODUCER" and parent["service"] != service:
                return True
    return False


def test_one_rest_order_is_one_trace_across_the_gateway_the_services_and_rabbitmq(api, admin):
    since = datetime.now(UTC) - timedelta(seconds=1)
    shopper, placed = _delivered_order(api, admin)
    shopper.until(placed["id"], lambda o: bool(o.get("shipment_id")))

    trace = _poll(lambda: _trace_of_place_order(api, admin, since))
    assert trace, "no trace with spans of every saga service was indexed"
    spans = trace["spans"]
    by_id = {s["span_id"]: s for s in spans}
    # The gateway started it: its span is the root and the order service's call is its child.
    assert trace["root_service"] == "gateway"
    assert spans[0]["service"] == "gateway"
    assert not spans[0].get("parent_span_id")
    [place] = [s for s in spans if s["name"] == PLACE_ORDER and s["kind"] == "KIND_SERVER"]
    assert by_id[place["parent_span_id"]]["service"] == "gateway"
    # Linked across RabbitMQ: a consumer span in payment and one in shipping, each the child of
    # a producer span of another service (the relay that published the event).
    for service in CONSUMERS:
        assert _linked_consumer(spans, service), f"no consumer span in {service} under a producer"
    # The stores' calls are client spans of the call that made them, named without values.
    for system in ("redis", "cassandra"):
        calls = [s for s in spans if s.get("attributes", {}).get("db.system") == system]
        assert calls, f"no {system} client span in the trace"
        for call in calls:
            assert call["kind"] == "KIND_CLIENT"
            assert call["parent_span_id"] in by_id
            assert placed["id"] not in call["attributes"].get("db.statement", "")
    # Tree order: every span comes after its parent; durations are those of start and end.
    seen: set[str] = set()
    for span in spans:
        if span.get("parent_span_id") in by_id:
            assert span["parent_span_id"] in seen
        seen.add(span["span_id"])
    assert float(trace["duration"].rstrip("s")) >= float(place["duration"].rstrip("s")) > 0

    def lines():
        found = ok(
            api.get(
                "/v1/logs",
                params={"trace_id": trace["trace_id"], "page_size": 100},
                headers=admin,
            )
        ).get("log_entries", [])
        return found if len({e["service"] for e in found}) >= 3 else None

    found = _poll(lines)
    assert found, "fewer than three services logged lines in the trace"
    assert all(e["trace_id"] == trace["trace_id"] for e in found)


def test_a_declined_payment_is_found_by_service_and_minimum_severity(api, admin):
    shopper, placed = _delivered_order(api, admin, card="tok_chargeDeclined")
    shopper.until(placed["id"], lambda o: o["state"] == "STATE_CANCELLED")

    def declined():
        found = ok(
            api.get(
                "/v1/logs",
                params={
                    "service": "payment",
                    "min_severity": "SEVERITY_WARN",
                    "query": f'"{placed["id"]}"',
                },
                headers=admin,
            )
        ).get("log_entries", [])
        return found

    found = _poll(declined)
    assert found, "the declined payment was not found in the logs"
    assert found[0]["service"] == "payment"
    assert found[0]["severity"] in ("SEVERITY_WARN", "SEVERITY_ERROR")
    assert "declined" in found[0]["body"]


def _pid_listening_on(port: int) -> int:
    """The process that listens on a local TCP port (from /proc, no tools needed)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise AssertionError(f"nothing listens on port {port}")


def _latency_ms(api, product_id: str, count: int = 20) -> float:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        ok(api.get(f"/v1/products/{product_id}"))
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def test_services_keep_serving_while_opensearch_is_stopped_and_nothing_accepted_is_lost(api, admin):
    teapot = product(api, admin, stock=5)
    before = _latency_ms(api, teapot["id"])
    port = httpx.URL(OpenSearchSettings.from_env().url).port
    pid = _pid_listening_on(port)
    os.kill(pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        during = _latency_ms(api, teapot["id"])
        shopper, placed = _delivered_order(api, admin, card="tok_chargeDeclined")
        shopper.until(placed["id"], lambda o: o["state"] == "STATE_CANCELLED")
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped_at)))
    finally:
        os.kill(pid, signal.SIGCONT)
    print(f"\nGetProduct median over REST: {before:.1f} ms before, {during:.1f} ms while stopped")
    # "Usual latency": a few milliseconds of noise allowed, never a wait on the store.
    assert during < max(3 * before, before + 50)

    def indexed():
        return ok(
            api.get(
                "/v1/logs",
                params={"service": "payment", "query": f'"{placed["id"]}"'},
                headers=admin,
            )
        ).get("log_entries", [])

    assert _poll(indexed, seconds=120), "what was logged while the store was stopped is lost"


def test_templates_retention_and_data_streams_exist_as_the_readme_documents():
    base = OpenSearchSettings.from_env().url
    with httpx.Client(base_url=base, trust_env=False, timeout=10) as http:
        for signal_type in ("logs", "traces", "metrics"):
            name = f"emporium-{signal_type}-otel-default"
            templates = ok(http.get(f"/_index_template/{name}"))["index_templates"]
            body = templates[0]["index_template"]
            assert body["index_patterns"] == [f"{signal_type}-*.otel-default"]
            assert body["_meta"]["retention_days"] == 7
            assert body["_meta"]["lifecycle_policy"] == "emporium-otel-retention"
            assert body["template"]["mappings"]["properties"]["@timestamp"]["type"] == "date_nanos"
            stream = ok(http.get(f"/_data_stream/{signal_type}-generic.otel-default"))
            assert stream["data_streams"][0]["template"] == name
        # Every service's documents arrive (metrics included) in the streams.
        found = ok(
            http.post(
                "/metrics-generic.otel-default/_search",
                json={"size": 0, "query": {"exists": {"field": "metrics.rpc.server.duration"}}},
            )
        )
        assert found["hits"]["total"]["value"] > 0
