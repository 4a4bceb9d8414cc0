"""Locust load generator: shoppers browsing, searching, filling carts, checking out and tracking
orders through the gateway's REST API, as Online Boutique's loadgenerator does.

    make load                                   # headless, bounded, prints Locust's table
    uv run --frozen locust -f bench/locustfile.py --headless -u 20 -r 5 -t 60s --only-summary

The host defaults to the local gateway (EMPORIUM_GATEWAY_PORT, as the stack sets it). Each
simulated shopper registers and signs in once (Argon2id makes that the costly step) and keeps a
card; run `make seed` first so there is a catalog to browse (without products the shoppers only
browse and search). The task weights give the mix: mostly reads, a few checkouts.
"""

from __future__ import annotations

import random
import secrets
import uuid
from typing import Any

from locust import HttpUser, between, task

from gateway import render

PASSWORD = "correct horse battery"
SEARCH_WORDS = ("teapot", "lamp", "kite", "tent", "mug", "classic", "compact", "vintage", "pen")
ADDRESS = {
    "region_code": "US",
    "postal_code": "94105",
    "administrative_area": "CA",
    "locality": "San Francisco",
    "address_lines": ["1 Market St"],
    "recipients": ["Load Shopper"],
}


class Shopper(HttpUser):
    """One signed-in shopper."""

    host = f"http://127.0.0.1:{render.load().port}"
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        email = f"load-{secrets.token_hex(8)}@example.com"
        self.client.post(
            "/v1/users:register",
            json={"email": email, "password": PASSWORD, "display_name": "Load"},
            name="/v1/users:register",
        )
        login = self.client.post("/v1/auth:login", json={"email": email, "password": PASSWORD})
        token = login.json().get("access_token", "") if login.ok else ""
        self.client.headers["authorization"] = f"Bearer {token}"
        card = self.client.post(
            "/v1/payment-methods",
            json={"request_id": str(uuid.uuid4()), "provider_token": "tok_visa"},
        )
        self.card = card.json().get("id", "") if card.ok else ""
        self.products: list[dict[str, Any]] = []
        self.orders: list[str] = []
        self._refresh_products()

    def _refresh_products(self) -> None:
        reply = self.client.get("/v1/products", params={"page_size": 50}, name="/v1/products")
        if reply.ok:
            self.products = reply.json().get("products", [])

    def _product(self) -> dict[str, Any] | None:
        return random.choice(self.products) if self.products else None

    @task(10)
    def browse(self) -> None:
        self._refresh_products()
        product = self._product()
        if product:
            self.client.get(f"/v1/products/{product['id']}", name="/v1/products/{id}")

    @task(5)
    def search(self) -> None:
        self.client.get(
            "/v1/products",
            params={"query": random.choice(SEARCH_WORDS), "page_size": 20},
            name="/v1/products?query",
        )

    @task(3)
    def cart(self) -> None:
        product = self._product()
        if product:
            self.client.post("/v1/cart/items", json={"product_id": product["id"], "quantity": 1})
        self.client.get("/v1/cart")

    @task(1)
    def checkout(self) -> None:
        product = self._product()
        if not product or not self.card:
            return
        quote = self.client.post(
            "/v1/shipping-options:quote",
            json={
                "destination": ADDRESS,
                "items": [
                    {
                        "product_id": product["id"],
                        "quantity": 1,
                        "weight_grams": product.get("weight_grams") or 500,
                    }
                ],
            },
        )
        options = quote.json().get("shipping_options", []) if quote.ok else []
        if not options:
            return
        placed = self.client.post(
            "/v1/orders",
            json={
                "request_id": str(uuid.uuid4()),
                "items": [{"product_id": product["id"], "quantity": 1}],
                "shipping_address": ADDRESS,
                "shipping_option_id": options[0]["id"],
                "payment_method_id": self.card,
            },
        )
        if placed.ok:
            self.orders.append(placed.json()["id"])

    @task(2)
    def track(self) -> None:
        if self.orders:
            self.client.get(f"/v1/orders/{random.choice(self.orders)}", name="/v1/orders/{id}")
        else:
            self.client.get("/v1/orders", params={"page_size": 10}, name="/v1/orders")
