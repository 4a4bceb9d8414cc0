"""Helpers of the checkout end-to-end tests (no tests here): shopper, admin, products, cards.

Everything goes through Envoy as a client would: REST for the calls, gRPC (h2c on the same
port) for WatchOrder's stream, real tokens from a real login.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

PASSWORD = "correct horse battery"
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}
ADDRESS = {
    "region_code": "US",
    "postal_code": "94105",
    "administrative_area": "CA",
    "locality": "San Francisco",
    "address_lines": ["1 Market St"],
    "recipients": ["Ann Buyer"],
}
SERVICES = ("user", "catalog", "cart", "order", "payment", "shipping")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.request.url, response.status_code, response.text)
    return response.json()


def violations(response: httpx.Response) -> list[str]:
    fields = []
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            fields += [v["field"] for v in detail["field_violations"]]
    return fields


def reason(response: httpx.Response) -> str:
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return detail["reason"]
    return ""


def admin_headers(api: httpx.Client) -> dict[str, str]:
    return bearer(ok(api.post("/v1/auth:login", json=ADMIN))["access_token"])


class Shopper:
    def __init__(self, api: httpx.Client) -> None:
        self.api = api
        email = f"checkout-{secrets.token_hex(6)}@example.com"
        ok(
            api.post(
                "/v1/users:register",
                json={"email": email, "password": PASSWORD, "display_name": "Ann"},
            )
        )
        tokens = ok(api.post("/v1/auth:login", json={"email": email, "password": PASSWORD}))
        self.token = tokens["access_token"]
        self.headers = bearer(self.token)

    def card(self, provider_token: str = "tok_visa") -> str:
        body = {"request_id": str(uuid.uuid4()), "provider_token": provider_token}
        return ok(self.api.post("/v1/payment-methods", json=body, headers=self.headers))["id"]

    def add_to_cart(self, product_id: str, quantity: int = 1) -> None:
        ok(
            self.api.post(
                "/v1/cart/items",
                json={"product_id": product_id, "quantity": quantity},
                headers=self.headers,
            )
        )

    def place(self, **body: Any) -> httpx.Response:
        body.setdefault("request_id", str(uuid.uuid4()))
        body.setdefault("shipping_address", ADDRESS)
        return self.api.post("/v1/orders", json=body, headers=self.headers)

    def order(self, order_id: str) -> dict[str, Any]:
        return ok(self.api.get(f"/v1/orders/{order_id}", headers=self.headers))

    def orders(self) -> list[dict[str, Any]]:
        return ok(self.api.get("/v1/orders", headers=self.headers)).get("orders", [])

    def payments(self, order_id: str) -> list[dict[str, Any]]:
        reply = self.api.get("/v1/payments", params={"order_id": order_id}, headers=self.headers)
        return ok(reply).get("payments", [])

    def shipments(self, order_id: str) -> list[dict[str, Any]]:
        reply = self.api.get("/v1/shipments", params={"order_id": order_id}, headers=self.headers)
        return ok(reply).get("shipments", [])

    def until(
        self, order_id: str, done: Callable[[dict[str, Any]], bool], seconds: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            order = self.order(order_id)
            if done(order):
                return order
            assert time.monotonic() < deadline, f"order {order_id} stuck: {order}"
            time.sleep(0.2)


def product(api: httpx.Client, admin: dict[str, str], *, units: int = 20, stock: int = 10):
    """A product created as a draft, published and stocked by the admin."""
    body = {
        "sku": f"E2E-CHK-{secrets.token_hex(5).upper()}",
        "title": "E2E teapot",
        "price": {"currency_code": "USD", "units": str(units), "nanos": 0},
        "weight_grams": 800,
        "state": "STATE_DRAFT",
    }
    created = ok(
        api.post("/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin)
    )
    ok(api.post(f"/v1/products/{created['id']}:publish", json={}, headers=admin))
    if stock:
        ok(
            api.post(
                f"/v1/products/{created['id']}/stock:adjust",
                json={"request_id": str(uuid.uuid4()), "delta": stock, "reason": "REASON_RESTOCK"},
                headers=admin,
            )
        )
    return created


def stock(api: httpx.Client, product_id: str, admin: dict[str, str]) -> dict[str, Any]:
    """The stock levels with the admin-only fields (on hand, reserved)."""
    return ok(api.get(f"/v1/products/{product_id}/stock", headers=admin))


def shipping_option(api: httpx.Client, product_id: str, quantity: int = 1) -> str:
    reply = ok(
        api.post(
            "/v1/shipping-options:quote",
            json={
                "destination": ADDRESS,
                "items": [{"product_id": product_id, "quantity": quantity, "weight_grams": 800}],
            },
        )
    )
    options = reply.get("shipping_options", [])
    assert options, f"nothing ships to {ADDRESS['region_code']}: {reply}"
    return options[0]["id"]


def amount(money: dict[str, Any]) -> float:
    return int(money.get("units", 0)) + money.get("nanos", 0) / 1e9
