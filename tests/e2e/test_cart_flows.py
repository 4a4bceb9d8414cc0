"""The cart end to end: REST and gRPC through Envoy to the cart service on Redis, with products
created by the admin through the real catalog service and tokens from a real login.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import aio_pika
import grpc
import httpx
import pytest
from emporium.cart.v1 import cart_events_pb2, cart_service_pb2, cart_service_pb2_grpc
from emporium.order.v1 import order_events_pb2, order_pb2

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event

PASSWORD = "correct horse battery"
ADMIN = {"email": "admin@example.com", "password": "emporium-admin-dev"}


@pytest.fixture(scope="module")
def api(gateway_url, service_address) -> httpx.Client:
    for name in ("user", "catalog", "cart"):
        service_address(name)  # fails (in CI) unless the service is up
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


@pytest.fixture(scope="module")
def admin(api) -> dict[str, str]:
    return bearer(_ok(api.post("/v1/auth:login", json=ADMIN))["access_token"])


def shopper(api: httpx.Client) -> dict[str, str]:
    email = f"cart-{secrets.token_hex(6)}@example.com"
    _ok(
        api.post(
            "/v1/users:register", json={"email": email, "password": PASSWORD, "display_name": "Ann"}
        )
    )
    tokens = _ok(api.post("/v1/auth:login", json={"email": email, "password": PASSWORD}))
    return bearer(tokens["access_token"])


def product(
    api: httpx.Client, admin: dict[str, str], *, units: int = 12, stock: int = 10, state: str = ""
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sku": f"E2E-CART-{secrets.token_hex(5).upper()}",
        "title": "E2E mug",
        "price": {"currency_code": "USD", "units": str(units), "nanos": 500_000_000},
    }
    if state:
        body["state"] = state
    created = _ok(
        api.post("/v1/products", params={"request_id": str(uuid.uuid4())}, json=body, headers=admin)
    )
    if stock:
        _ok(
            api.post(
                f"/v1/products/{created['id']}/stock:adjust",
                json={"request_id": str(uuid.uuid4()), "delta": stock, "reason": "REASON_RESTOCK"},
                headers=admin,
            )
        )
    return created


def reason(response: httpx.Response) -> str:
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
            return detail["reason"]
    return ""


def violations(response: httpx.Response) -> list[str]:
    fields = []
    for detail in response.json().get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            fields += [v["field"] for v in detail["field_violations"]]
    return fields


def add(api, who, product_id: str, quantity: int = 1) -> httpx.Response:
    return api.post(
        "/v1/cart/items", json={"product_id": product_id, "quantity": quantity}, headers=who
    )


def cart(api, who) -> dict[str, Any]:
    return _ok(api.get("/v1/cart", headers=who))


def lines(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["product_id"], item["quantity"]) for item in body.get("items", [])]


# --- the flows ------------------------------------------------------------------------------


def test_a_shopper_adds_updates_removes_and_clears_their_cart_over_rest(api, admin):
    ann = shopper(api)
    mug, pot = product(api, admin, units=12), product(api, admin, units=3)
    assert lines(cart(api, ann)) == []
    body = _ok(add(api, ann, mug["id"], 2))
    assert lines(body) == [(mug["id"], 2)]
    item = body["items"][0]
    assert item["title"] == "E2E mug"
    assert item["unit_price"]["currency_code"] == "USD"
    assert (int(item["total"]["units"]), item["total"]["nanos"]) == (25, 0)
    assert item["availability"] == "AVAILABILITY_IN_STOCK"
    body = _ok(add(api, ann, mug["id"], 1))
    assert lines(body) == [(mug["id"], 3)]
    _ok(add(api, ann, pot["id"], 1))
    body = _ok(api.patch(f"/v1/cart/items/{pot['id']}", json={"quantity": 4}, headers=ann))
    assert lines(body) == [(mug["id"], 3), (pot["id"], 4)]
    assert body["item_count"] == 7
    assert (int(body["subtotal"]["units"]), body["subtotal"]["nanos"]) == (51, 500_000_000)
    assert body["update_time"]
    assert body["expire_time"]
    body = _ok(api.delete(f"/v1/cart/items/{mug['id']}", headers=ann))
    assert lines(body) == [(pot["id"], 4)]
    body = _ok(api.patch(f"/v1/cart/items/{pot['id']}", json={"quantity": 0}, headers=ann))
    assert lines(body) == []
    _ok(add(api, ann, mug["id"], 1))
    assert lines(_ok(api.post("/v1/cart:clear", json={}, headers=ann))) == []
    assert lines(cart(api, ann)) == []


def test_refresh_keeps_the_lines_and_returns_the_catalogs_current_data(api, admin):
    ann = shopper(api)
    mug = product(api, admin)
    _ok(add(api, ann, mug["id"], 2))
    body = _ok(api.post("/v1/cart:refresh", json={}, headers=ann))
    assert lines(body) == [(mug["id"], 2)]
    assert body["items"][0]["price_changed"] is False


def test_another_user_can_neither_see_nor_change_the_cart(api, admin):
    ann, bob = shopper(api), shopper(api)
    mug = product(api, admin)
    _ok(add(api, ann, mug["id"], 2))
    assert lines(cart(api, bob)) == []
    assert (
        api.patch(f"/v1/cart/items/{mug['id']}", json={"quantity": 9}, headers=bob).status_code
        == 404
    )
    assert api.delete(f"/v1/cart/items/{mug['id']}", headers=bob).status_code == 404
    _ok(api.post("/v1/cart:clear", json={}, headers=bob))
    assert lines(cart(api, ann)) == [(mug["id"], 2)]


def test_the_cart_needs_a_token(api):
    response = api.get("/v1/cart")
    assert response.status_code == 401
    assert api.post("/v1/cart/items", json={"product_id": "x", "quantity": 1}).status_code == 401


# --- bad requests write nothing -------------------------------------------------------------


def test_an_unknown_product_is_404_and_the_cart_is_unchanged(api):
    ann = shopper(api)
    response = add(api, ann, str(uuid.uuid4()))
    assert response.status_code == 404, response.text
    assert reason(response) == "PRODUCT_NOT_FOUND"
    assert "update_time" not in cart(api, ann)


def test_an_archived_product_is_400_failed_precondition_and_a_draft_is_404(api, admin):
    ann = shopper(api)
    archived = product(api, admin)
    _ok(api.post(f"/v1/products/{archived['id']}:archive", json={}, headers=admin))
    response = add(api, ann, archived["id"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert reason(response) == "PRODUCT_ARCHIVED"
    draft = product(api, admin, state="STATE_DRAFT", stock=0)
    assert add(api, ann, draft["id"]).status_code == 404
    assert "update_time" not in cart(api, ann)


def test_a_quantity_of_zero_is_400_naming_the_field_and_writes_nothing(api, admin):
    ann = shopper(api)
    mug = product(api, admin)
    _ok(add(api, ann, mug["id"], 2))
    before = cart(api, ann)
    response = add(api, ann, mug["id"], 0)
    assert response.status_code == 400, response.text
    assert violations(response) == ["quantity"]
    response = api.patch(f"/v1/cart/items/{mug['id']}", json={"quantity": -1}, headers=ann)
    assert response.status_code == 400
    assert violations(response) == ["item.quantity"]
    after = cart(api, ann)
    assert lines(after) == lines(before)
    assert after["update_time"] == before["update_time"]


def test_more_units_than_in_stock_is_400_and_writes_nothing(api, admin):
    ann = shopper(api)
    mug = product(api, admin, stock=3)
    response = add(api, ann, mug["id"], 4)
    assert response.status_code == 400, response.text
    assert reason(response) == "INSUFFICIENT_STOCK"
    assert lines(cart(api, ann)) == []


# --- native gRPC through the gateway --------------------------------------------------------


def test_the_cart_over_native_grpc_through_the_gateway_is_the_same_cart(api, admin, gateway):
    ann = shopper(api)
    mug = product(api, admin)
    _ok(add(api, ann, mug["id"], 2))
    metadata = [("authorization", ann["authorization"])]
    with grpc.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = cart_service_pb2_grpc.CartServiceStub(channel)
        reply = stub.AddCartItem(
            cart_service_pb2.AddCartItemRequest(product_id=mug["id"], quantity=1),
            metadata=metadata,
            timeout=10,
        )
        assert [(i.product_id, i.quantity) for i in reply.items] == [(mug["id"], 3)]
        with pytest.raises(grpc.RpcError) as raised:
            stub.AddCartItem(
                cart_service_pb2.AddCartItemRequest(product_id=mug["id"], quantity=0),
                metadata=metadata,
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bob = [("authorization", shopper(api)["authorization"])]
        assert list(stub.GetCart(cart_service_pb2.GetCartRequest(), metadata=bob).items) == []
    assert lines(cart(api, ann)) == [(mug["id"], 3)]


# --- the catalog's changes and checkout -----------------------------------------------------


def test_a_price_change_in_the_catalog_is_flagged_and_refresh_accepts_it(api, admin):
    ann = shopper(api)
    mug = product(api, admin, units=12)
    _ok(add(api, ann, mug["id"], 2))
    _ok(
        api.patch(
            f"/v1/products/{mug['id']}",
            params={"update_mask": "price"},
            json={"price": {"currency_code": "USD", "units": "15", "nanos": 0}},
            headers=admin,
        )
    )
    [item] = cart(api, ann)["items"]
    assert int(item["unit_price"]["units"]) == 12
    assert int(item["current_unit_price"]["units"]) == 15
    assert item["price_changed"] is True
    body = _ok(api.post("/v1/cart:refresh", json={}, headers=ann))
    [item] = body["items"]
    assert (int(item["unit_price"]["units"]), item["price_changed"]) == (15, False)
    assert int(body["subtotal"]["units"]) == 30
    assert body["attention_required"] is False


async def test_an_order_placed_from_the_cart_empties_it_and_publishes_cart_checked_out(api, admin):
    ann = shopper(api)
    mug, kept = product(api, admin), product(api, admin)
    _ok(add(api, ann, mug["id"], 2))
    user_id = _ok(add(api, ann, kept["id"], 1))["user_id"]
    placed = order_events_pb2.OrderPlaced(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        from_cart=True,
        line_items=[order_pb2.LineItem(product_id=mug["id"], quantity=2)],
    )
    connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "emporium.events",
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
        )
        queue = await channel.declare_queue(f"test.e2e.cart.{secrets.token_hex(4)}", exclusive=True)
        await queue.bind(exchange, "emporium.cart.v1.CartCheckedOut")
        async with await Bus.connect(RabbitSettings.from_env(), source="order") as bus:
            await bus.publish([Event.of(placed, "order")])
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None and message.app_id == "cart":
                event = cart_events_pb2.CartCheckedOut.FromString(message.body)
                if event.order_id == placed.order_id:
                    break
            assert asyncio.get_running_loop().time() < deadline, "no CartCheckedOut"
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    assert event.user_id == user_id
    assert [(i.product_id, i.quantity) for i in event.items] == [(mug["id"], 2)]
    assert (message.type, message.app_id) == ("emporium.cart.v1.CartCheckedOut", "cart")
    assert lines(cart(api, ann)) == [(kept["id"], 1)]
