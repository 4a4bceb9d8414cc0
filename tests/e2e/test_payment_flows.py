"""Payments end to end: REST through Envoy to the payment service on Cassandra, tokens from a
real login, and a payment made by publishing OrderConfirmed on the real broker."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from emporium.order.v1 import order_events_pb2
from google.type import money_pb2

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event

PASSWORD = "correct horse battery"
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
PAN = "4242424242424242"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(gateway_url, service_address) -> httpx.Client:
    for name in ("user", "payment"):
        service_address(name)  # fails (in CI) unless the service is up
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def shopper(api: httpx.Client) -> tuple[str, dict[str, str]]:
    email = f"pay-{secrets.token_hex(6)}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": "Ann"}
    _ok(api.post("/v1/users:register", json=body))
    tokens = _ok(api.post("/v1/auth:login", json={"email": email, "password": PASSWORD}))
    headers = bearer(tokens["access_token"])
    return _ok(api.get("/v1/users/me", headers=headers))["id"], headers


def add_card(api: httpx.Client, headers: dict[str, str], token: str = "tok_visa", **more: Any):
    body = {"request_id": str(uuid.uuid4()), "provider_token": token, **more}
    return api.post("/v1/payment-methods", json=body, headers=headers)


def test_a_user_adds_lists_sets_default_and_deletes_payment_methods_over_rest(api):
    _, ann = shopper(api)
    first = _ok(add_card(api, ann))
    assert first["card"]["brand"] == "BRAND_VISA"
    assert first["card"]["last4"] == "4242"
    assert first["default_method"] is True
    second = _ok(add_card(api, ann, f"card:{PAN}:11:2031:123"))
    assert "default_method" not in second or second["default_method"] is False
    listed = _ok(api.get("/v1/payment-methods", headers=ann))
    assert [m["id"] for m in listed["payment_methods"]] == [first["id"], second["id"]]
    made = _ok(api.post(f"/v1/payment-methods/{second['id']}:setDefault", json={}, headers=ann))
    assert made["default_method"] is True
    assert _ok(api.get(f"/v1/payment-methods/{second['id']}", headers=ann))["id"] == second["id"]
    _ok(api.delete(f"/v1/payment-methods/{first['id']}", headers=ann))
    gone = api.get(f"/v1/payment-methods/{first['id']}", headers=ann)
    assert gone.status_code == 404
    listed = _ok(api.get("/v1/payment-methods", headers=ann))
    assert [m["id"] for m in listed["payment_methods"]] == [second["id"]]


def test_the_card_number_never_appears_in_any_response(api):
    _, ann = shopper(api)
    texts = [add_card(api, ann, f"card:{PAN}:12:2032:123").text]
    texts.append(api.get("/v1/payment-methods", headers=ann).text)
    texts.append(add_card(api, ann, f"card:{PAN}:01:2020:123").text)  # expired
    texts.append(add_card(api, ann, f"card:{PAN[:-1]}1:12:2032:123").text)  # bad Luhn
    for text in texts:
        assert PAN not in text
        assert "pm_sandbox" not in text  # nor the provider's token
    # Nor in the logs of the stack's processes (the log `infra/local/stack` writes, if it
    # started the services; a reused `make run` logs to its terminal).
    logs = sorted((ROOT / "var/stack").glob("stack-*.log"), key=lambda p: p.stat().st_mtime)
    if logs:
        assert PAN not in logs[-1].read_text(errors="replace")


def test_an_expired_card_is_a_400_naming_the_field(api):
    _, ann = shopper(api)
    response = add_card(api, ann, f"card:{PAN}:01:2020:123")
    assert response.status_code == 400, response.text
    body = response.json()
    [bad] = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    violation = bad.get("field_violations") or bad.get("fieldViolations")
    assert violation[0]["field"] == "provider_token"
    assert "exp_month/exp_year" in violation[0]["description"]
    assert _ok(api.get("/v1/payment-methods", headers=ann)).get("payment_methods", []) == []


def test_without_a_token_payment_methods_are_401(api):
    assert api.get("/v1/payment-methods").status_code == 401
    assert add_card(api, {}).status_code == 401


async def _confirm(order_id: str, user_id: str, method_id: str) -> None:
    bus = await Bus.connect(RabbitSettings.from_env(), source="e2e")
    try:
        message = order_events_pb2.OrderConfirmed(
            order_id=order_id,
            user_id=user_id,
            payment_method_id=method_id,
            total=money_pb2.Money(currency_code="USD", units=19, nanos=990_000_000),
        )
        await bus.publish([Event.of(message, "order")])
    finally:
        await bus.close()


def _payment_of(api: httpx.Client, headers: dict[str, str], order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = _ok(api.get("/v1/payments", params={"order_id": order_id}, headers=headers))
        payments = listed.get("payments", [])
        if payments and payments[0]["state"] != "STATE_PENDING":
            return payments[0]
        time.sleep(0.2)
    raise AssertionError(f"no settled payment for order {order_id}")


def test_another_user_sees_neither_my_payment_methods_nor_my_payments(api):
    ann_id, ann = shopper(api)
    _, bob = shopper(api)
    # A declined card: the payment exists (FAILED), and no other service ships anything.
    method = _ok(add_card(api, ann, "tok_chargeDeclined"))
    order_id = str(uuid.uuid4())
    asyncio.run(_confirm(order_id, ann_id, method["id"]))
    payment = _payment_of(api, ann, order_id)
    assert payment["state"] == "STATE_FAILED"
    assert payment["failure_code"] == "FAILURE_CODE_CARD_DECLINED"
    assert _ok(api.get(f"/v1/payments/{payment['id']}", headers=ann))["order_id"] == order_id

    assert api.get(f"/v1/payment-methods/{method['id']}", headers=bob).status_code == 404
    assert api.delete(f"/v1/payment-methods/{method['id']}", headers=bob).status_code == 404
    setting = api.post(f"/v1/payment-methods/{method['id']}:setDefault", json={}, headers=bob)
    assert setting.status_code == 404
    assert _ok(api.get("/v1/payment-methods", headers=bob)).get("payment_methods", []) == []
    assert api.get(f"/v1/payments/{payment['id']}", headers=bob).status_code == 404
    theirs = _ok(api.get("/v1/payments", params={"order_id": order_id}, headers=bob))
    assert theirs.get("payments", []) == []
    spying = api.get("/v1/payments", params={"user_id": ann_id}, headers=bob)
    assert spying.status_code == 403
    admin = bearer(_ok(api.post("/v1/auth:login", json=ADMIN))["access_token"])
    assert _ok(api.get(f"/v1/payments/{payment['id']}", headers=admin))["id"] == payment["id"]
    # Ann's method still works for her.
    assert _ok(api.get(f"/v1/payment-methods/{method['id']}", headers=ann))["id"] == method["id"]
