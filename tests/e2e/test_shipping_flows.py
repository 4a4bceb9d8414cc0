"""Shipping end to end: REST through Envoy to the shipping service on Cassandra and RabbitMQ.

Tokens come from real sign-ins at the user service: the development admin and a freshly
registered shopper. The rates these tests add ship to Antarctica (AQ), which the default rate
table does not serve, and are deleted again.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from emporium.order.v1 import order_events_pb2, order_pb2
from emporium.payment.v1 import payment_events_pb2
from google.type import postal_address_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway import render
from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event, owner, type_name
from services.user.config import AdminSettings
from tests.integration.conftest import check_http

PASSWORD = "correct horse battery"


def _serving(name: str, port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]) as ch:
        try:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            pytest.fail(f"the {name} service on {port} is not serving: {error.code().name}")
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        pytest.fail(f"the {name} service on {port} is not serving")


@pytest.fixture(scope="module")
def gateway() -> render.Gateway:
    gw = render.load()
    why = check_http(f"http://127.0.0.1:{gw.port}/healthz")
    if why is not None:
        pytest.fail(f"the gateway is not reachable: {why}; run under infra/local/stack with")
    for name in ("user", "shipping"):
        _serving(name, gw.service(name).port)
    return gw


@pytest.fixture(scope="module")
def api(gateway) -> httpx.Client:
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway.port}", timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    response = api.post(
        "/v1/auth:login",
        json={
            "email": AdminSettings.DEVELOPMENT_EMAIL,
            "password": AdminSettings.DEVELOPMENT_PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


@pytest.fixture(scope="module")
def shopper(api) -> tuple[str, dict[str, str]]:
    email = f"e2e-{secrets.token_hex(6)}@example.com"
    registered = api.post(
        "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "Ann"}
    )
    assert registered.status_code == 200, registered.text
    tokens = api.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
    headers = bearer(tokens.json()["access_token"])
    me = api.get("/v1/users/me", headers=headers)
    return me.json()["id"], headers


def violations(response: httpx.Response) -> list[str]:
    fields = []
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            fields += [v["field"] for v in detail["field_violations"]]
    return fields


def rate_body(**fields: Any) -> dict[str, Any]:
    return {
        "carrier": "dhl",
        "service_level": "SERVICE_LEVEL_ECONOMY",
        "display_name": f"E2E Polar {secrets.token_hex(3)}",
        "region_codes": ["AQ"],
        "base_price": {"currency_code": "USD", "units": "40"},
        "price_per_kg": {"currency_code": "USD", "units": "10"},
        "min_business_days": 10,
        "max_business_days": 20,
        **fields,
    }


def test_anyone_lists_and_quotes_the_default_options_to_the_us(api):
    listed = api.get("/v1/shipping-options", params={"destination.region_code": "US"})
    assert listed.status_code == 200, listed.text
    names = [o["display_name"] for o in listed.json()["shipping_options"]]
    assert names[:2] == ["UPS Ground", "UPS Express"]
    quoted = api.post(
        "/v1/shipping-options:quote",
        json={
            "destination": {"region_code": "US", "postal_code": "94103"},
            "items": [{"product_id": str(uuid.uuid4()), "quantity": 2, "weight_grams": 600}],
        },
    )
    assert quoted.status_code == 200, quoted.text
    ground = quoted.json()["shipping_options"][0]
    # 1,200 g: two started kilograms on top of the base price.
    assert ground["display_name"] == "UPS Ground"
    assert (ground["price"]["units"], ground["price"]["nanos"]) == ("7", 990000000)
    assert ground["estimated_delivery"]["earliest_date"]["year"] >= 2025
    assert ground["id"] == listed.json()["shipping_options"][0]["id"]


def test_bad_input_is_400_naming_the_field(api, admin):
    missing = api.get("/v1/shipping-options")
    assert missing.status_code == 400
    assert violations(missing) == ["destination.region_code"]
    no_items = api.post("/v1/shipping-options:quote", json={"destination": {"region_code": "US"}})
    assert no_items.status_code == 400
    assert violations(no_items) == ["items"]
    bad_carrier = api.post("/v1/shipping-rates", json=rate_body(carrier="pigeon"), headers=admin)
    assert bad_carrier.status_code == 400
    assert violations(bad_carrier) == ["shipping_rate.carrier"]
    days = api.post(
        "/v1/shipping-rates",
        json=rate_body(min_business_days=5, max_business_days=1),
        headers=admin,
    )
    assert days.status_code == 400
    assert violations(days) == ["shipping_rate.max_business_days"]


def test_an_admin_manages_the_rate_table_over_rest(api, admin):
    request_id = str(uuid.uuid4())
    body = rate_body()
    created = api.post(
        "/v1/shipping-rates", params={"request_id": request_id}, json=body, headers=admin
    )
    assert created.status_code == 200, created.text
    rate = created.json()
    try:
        retried = api.post(
            "/v1/shipping-rates", params={"request_id": request_id}, json=body, headers=admin
        )
        assert retried.json()["id"] == rate["id"]
        got = api.get(f"/v1/shipping-rates/{rate['id']}", headers=admin)
        assert got.json()["display_name"] == body["display_name"]
        listed = api.get("/v1/shipping-rates", params={"page_size": 100}, headers=admin)
        assert rate["id"] in [r["id"] for r in listed.json()["shipping_rates"]]
        options = api.get("/v1/shipping-options", params={"destination.region_code": "AQ"})
        assert rate["id"] in [o["id"] for o in options.json()["shipping_options"]]
        patched = api.patch(
            f"/v1/shipping-rates/{rate['id']}",
            params={"update_mask": "disabled,base_price"},
            json={"disabled": True, "base_price": {"currency_code": "USD", "units": "45"}},
            headers=admin,
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["disabled"] is True
        assert patched.json()["base_price"]["units"] == "45"
        options = api.get("/v1/shipping-options", params={"destination.region_code": "AQ"})
        assert rate["id"] not in [o["id"] for o in options.json().get("shipping_options", [])]
        bad_mask = api.patch(
            f"/v1/shipping-rates/{rate['id']}",
            params={"update_mask": "create_time"},
            json={},
            headers=admin,
        )
        assert bad_mask.status_code == 400
        assert violations(bad_mask) == ["update_mask"]
    finally:
        deleted = api.delete(f"/v1/shipping-rates/{rate['id']}", headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert api.get(f"/v1/shipping-rates/{rate['id']}", headers=admin).status_code == 404


def test_the_rate_table_is_admin_only(api, shopper):
    _, headers = shopper
    assert api.post("/v1/shipping-rates", json=rate_body(), headers=headers).status_code == 403
    assert api.get("/v1/shipping-rates", headers=headers).status_code == 403
    assert api.get("/v1/shipping-rates").status_code == 401
    assert api.get("/v1/shipments").status_code == 401


async def _publish(*messages) -> None:
    bus = await Bus.connect(RabbitSettings.from_env(), source="e2e", wait_seconds=10)
    try:
        # As their owners publish them: consumers refuse an event from any other source.
        await bus.publish([Event.of(m, owner(type_name(m))) for m in messages])
    finally:
        await bus.close()


def test_a_paid_order_is_shipped_tracked_and_delivered(api, admin, shopper):
    user_id, headers = shopper
    option = api.get("/v1/shipping-options", params={"destination.region_code": "US"}).json()[
        "shipping_options"
    ][0]["id"]
    order_id = str(uuid.uuid4())
    asyncio.run(
        _publish(
            order_events_pb2.OrderConfirmed(
                order_id=order_id,
                user_id=user_id,
                shipping_address=postal_address_pb2.PostalAddress(
                    region_code="US", postal_code="94103", address_lines=["1 Main St"]
                ),
                shipping_option_id=option,
                line_items=[order_pb2.LineItem(product_id=str(uuid.uuid4()), quantity=1)],
            ),
            payment_events_pb2.PaymentSucceeded(
                payment_id=str(uuid.uuid4()), order_id=order_id, user_id=user_id
            ),
        )
    )
    deadline = time.monotonic() + 20
    while True:
        found = api.get("/v1/shipments", params={"order_id": order_id}, headers=headers).json()
        if found.get("shipments"):
            break
        assert time.monotonic() < deadline, "no shipment was created"
        time.sleep(0.3)
    shipment = found["shipments"][0]
    assert shipment["tracking_number"]
    assert shipment["destination"]["postal_code"] == "94103"
    other = api.get(f"/v1/shipments/{shipment['id']}", headers=admin)
    assert other.status_code == 200
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    delivered = api.post(
        f"/v1/shipments/{shipment['id']}/tracking-events",
        json={
            "request_id": str(uuid.uuid4()),
            "tracking_event": {"state": "STATE_DELIVERED", "event_time": now},
        },
        headers=admin,
    )
    assert delivered.status_code == 200, delivered.text
    by_shopper = api.post(
        f"/v1/shipments/{shipment['id']}/tracking-events",
        json={"request_id": "x", "tracking_event": {"state": "STATE_DELIVERED", "event_time": now}},
        headers=headers,
    )
    assert by_shopper.status_code == 403
    got = api.get(f"/v1/shipments/{shipment['id']}", headers=headers).json()
    assert got["state"] == "STATE_DELIVERED"
    events = api.get(f"/v1/shipments/{shipment['id']}/tracking-events", headers=headers).json()
    assert [e["state"] for e in events["tracking_events"]][-1] == "STATE_DELIVERED"
