"""The cart service over real gRPC, with the in-memory adapters and a fake catalog."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.cart.v1 import cart_events_pb2, cart_pb2, cart_service_pb2, cart_service_pb2_grpc
from emporium.catalog.v1 import catalog_events_pb2, product_pb2
from emporium.order.v1 import order_events_pb2, order_pb2
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from kit import auth, server
from kit.events import Event
from services.cart import bootstrap, consumers
from services.cart.adapters.memory import InMemoryCartRepository, InMemoryCatalog
from services.cart.config import Settings
from services.cart.domain import MAX_LINES, Money, ProductState

ISSUER, AUDIENCE = "emporium-user", "emporium"
Item = cart_pb2.CartItem


class Tokens:
    """Signs access tokens as the user service would, and serves the matching JWK Set."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}

    async def source(self) -> bytes:
        return json.dumps(self.jwks).encode()

    def metadata(self, user_id: str) -> list[tuple[str, str]]:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "roles": ["customer"],
        }
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})
        return [("authorization", f"Bearer {token}")]


class Shopper:
    """One signed-in user's view of the cart service."""

    def __init__(self, stub: cart_service_pb2_grpc.CartServiceStub, metadata) -> None:
        self.stub = stub
        self.metadata = metadata

    async def get(self) -> cart_pb2.Cart:
        return await self.stub.GetCart(cart_service_pb2.GetCartRequest(), metadata=self.metadata)

    async def add(self, product_id: str, quantity: int = 1) -> cart_pb2.Cart:
        return await self.stub.AddCartItem(
            cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=quantity),
            metadata=self.metadata,
        )

    async def update(self, product_id: str, quantity: int, mask: list[str] | None = None):
        request = cart_service_pb2.UpdateCartItemRequest(
            product_id=product_id, item=Item(quantity=quantity)
        )
        if mask is not None:
            request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=mask))
        return await self.stub.UpdateCartItem(request, metadata=self.metadata)

    async def remove(self, product_id: str) -> cart_pb2.Cart:
        return await self.stub.RemoveCartItem(
            cart_service_pb2.RemoveCartItemRequest(product_id=product_id), metadata=self.metadata
        )

    async def clear(self) -> cart_pb2.Cart:
        return await self.stub.ClearCart(
            cart_service_pb2.ClearCartRequest(), metadata=self.metadata
        )

    async def refresh(self) -> cart_pb2.Cart:
        return await self.stub.RefreshCart(
            cart_service_pb2.RefreshCartRequest(), metadata=self.metadata
        )


class World:
    def __init__(self, channel, tokens, carts, catalog, app) -> None:
        self.stub = cart_service_pb2_grpc.CartServiceStub(channel)
        self.tokens = tokens
        self.carts = carts
        self.catalog = catalog
        self.app = app

    def shopper(self, user_id: str | None = None) -> Shopper:
        return Shopper(self.stub, self.tokens.metadata(user_id or str(uuid.uuid4())))

    def product(self, **fields: Any) -> str:
        product_id = str(uuid.uuid4())
        self.catalog.put(product_id, **fields)
        return product_id


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_CART_GRPC_PORT": "0"})
    tokens = Tokens()
    carts = InMemoryCartRepository(ttl_seconds=settings.ttl_seconds)
    catalog = InMemoryCatalog()
    app = await bootstrap.build(
        settings,
        carts=carts,
        catalog=catalog,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, carts, catalog, app)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


def _reason(error: grpc.aio.AioRpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(info):
            return info.reason
    return ""


def _usd(units: int, nanos: int = 0) -> Money:
    return Money("USD", units * 1_000_000_000 + nanos)


# --- reading and adding ---------------------------------------------------------------------


async def test_a_user_who_never_used_the_cart_gets_an_empty_one_in_the_shop_currency(world):
    user_id = str(uuid.uuid4())
    cart = await world.shopper(user_id).get()
    assert cart.user_id == user_id
    assert list(cart.items) == []
    assert (cart.subtotal.currency_code, cart.subtotal.units, cart.item_count) == ("USD", 0, 0)
    assert not cart.HasField("update_time")
    assert world.carts.writes == 0


async def test_adding_a_product_appends_a_line_with_the_catalog_snapshot_and_totals(world):
    product = world.product(price=_usd(12, 500_000_000), stock=5, title="Red mug")
    cart = await world.shopper().add(product, 2)
    [line] = cart.items
    assert (line.product_id, line.title, line.quantity) == (product, "Red mug", 2)
    assert (line.unit_price.units, line.unit_price.nanos) == (12, 500_000_000)
    assert (line.total.units, line.total.nanos) == (25, 0)
    assert (cart.subtotal.currency_code, cart.subtotal.units, cart.item_count) == ("USD", 25, 2)
    assert line.availability == Item.AVAILABILITY_IN_STOCK
    assert line.available_quantity == 5
    assert not line.price_changed
    assert not cart.attention_required
    assert line.HasField("add_time")
    assert cart.HasField("update_time")
    ttl = cart.expire_time.ToSeconds() - cart.update_time.ToSeconds()
    assert ttl == 30 * 24 * 3600


async def test_adding_the_same_product_twice_sums_the_quantity_in_one_line(world):
    product = world.product()
    shopper = world.shopper()
    await shopper.add(product, 2)
    cart = await shopper.add(product, 3)
    assert [(i.product_id, i.quantity) for i in cart.items] == [(product, 5)]


async def test_lines_keep_the_order_in_which_products_were_first_added(world):
    first, second = world.product(), world.product()
    shopper = world.shopper()
    await shopper.add(first)
    await shopper.add(second)
    cart = await shopper.add(first)
    assert [i.product_id for i in cart.items] == [first, second]


async def test_twenty_concurrent_adds_of_one_product_all_count(world):
    product = world.product(stock=50)
    shopper = world.shopper()
    await asyncio.gather(*(shopper.add(product, 1) for _ in range(20)))
    assert [i.quantity for i in (await shopper.get()).items] == [20]


async def test_a_quantity_of_zero_is_invalid_argument_naming_quantity_and_writes_nothing(world):
    product = world.product()
    error = await _error(world.shopper().add(product, 0))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["quantity"]
    assert world.carts.writes == 0


async def test_a_negative_quantity_and_a_missing_product_id_are_both_named(world):
    error = await _error(world.shopper().add("", -2))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["product_id", "quantity"]


async def test_an_unknown_product_is_not_found_and_writes_nothing(world):
    error = await _error(world.shopper().add(str(uuid.uuid4()), 1))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert _reason(error) == "PRODUCT_NOT_FOUND"
    assert world.carts.writes == 0


async def test_a_draft_product_is_not_found_as_the_contract_says(world):
    product = world.product(state=ProductState.DRAFT)
    error = await _error(world.shopper().add(product, 1))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_an_archived_product_is_failed_precondition_and_writes_nothing(world):
    product = world.product(state=ProductState.ARCHIVED)
    error = await _error(world.shopper().add(product, 1))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(error) == "PRODUCT_ARCHIVED"
    assert world.carts.writes == 0


async def test_more_units_than_the_catalog_has_is_failed_precondition(world):
    product = world.product(stock=3)
    shopper = world.shopper()
    error = await _error(shopper.add(product, 4))
    assert (error.code(), _reason(error)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_STOCK",
    )
    await shopper.add(product, 2)
    error = await _error(shopper.add(product, 2))
    assert _reason(error) == "INSUFFICIENT_STOCK"
    assert [i.quantity for i in (await shopper.get()).items] == [2]


async def test_a_line_holds_at_most_ninety_nine_units(world):
    product = world.product(stock=1000)
    shopper = world.shopper()
    await shopper.add(product, 99)
    error = await _error(shopper.add(product, 1))
    assert (error.code(), _reason(error)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "QUANTITY_LIMIT_EXCEEDED",
    )


async def test_a_cart_holds_at_most_one_hundred_lines(world):
    shopper = world.shopper()
    for _ in range(MAX_LINES):
        await shopper.add(world.product())
    error = await _error(shopper.add(world.product()))
    assert (error.code(), _reason(error)) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CART_FULL")


async def test_a_product_in_another_currency_than_the_cart_is_failed_precondition(world):
    shopper = world.shopper()
    await shopper.add(world.product(price=_usd(5)))
    error = await _error(shopper.add(world.product(price=Money("EUR", 5_000_000_000))))
    assert (error.code(), _reason(error)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CURRENCY_MISMATCH",
    )


async def test_a_catalog_that_cannot_be_reached_makes_adding_unavailable(world):
    product = world.product()
    world.catalog.down = True
    error = await _error(world.shopper().add(product))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert world.carts.writes == 0


# --- updating, removing, clearing -----------------------------------------------------------


async def test_update_sets_the_quantity_and_zero_removes_the_line(world):
    product, other = world.product(), world.product()
    shopper = world.shopper()
    await shopper.add(product, 1)
    await shopper.add(other, 1)
    cart = await shopper.update(product, 4)
    assert [(i.product_id, i.quantity) for i in cart.items] == [(product, 4), (other, 1)]
    cart = await shopper.update(product, 0)
    assert [i.product_id for i in cart.items] == [other]


async def test_update_rejects_a_negative_quantity_and_other_mask_paths(world):
    product = world.product()
    shopper = world.shopper()
    await shopper.add(product)
    error = await _error(shopper.update(product, -1))
    assert (error.code(), _fields(error)) == (grpc.StatusCode.INVALID_ARGUMENT, ["item.quantity"])
    error = await _error(shopper.update(product, 2, mask=["title"]))
    assert _fields(error) == ["update_mask"]
    assert (await shopper.update(product, 2, mask=["quantity"])).items[0].quantity == 2


async def test_update_of_a_product_not_in_the_cart_is_not_found(world):
    error = await _error(world.shopper().update(world.product(), 1))
    assert (error.code(), _reason(error)) == (grpc.StatusCode.NOT_FOUND, "CART_ITEM_NOT_FOUND")


async def test_a_rise_is_checked_against_stock_and_the_ninety_nine_limit(world):
    product = world.product(stock=5)
    shopper = world.shopper()
    await shopper.add(product, 2)
    assert _reason(await _error(shopper.update(product, 6))) == "INSUFFICIENT_STOCK"
    world.catalog.change(product, available_quantity=500)
    assert _reason(await _error(shopper.update(product, 100))) == "QUANTITY_LIMIT_EXCEEDED"
    assert (await shopper.get()).items[0].quantity == 2


async def test_an_archived_product_may_be_lowered_but_not_raised(world):
    product = world.product(stock=10)
    shopper = world.shopper()
    await shopper.add(product, 3)
    world.catalog.change(product, state=ProductState.ARCHIVED)
    error = await _error(shopper.update(product, 4))
    assert (error.code(), _reason(error)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PRODUCT_ARCHIVED",
    )
    world.catalog.down = True  # lowering needs no catalog
    assert (await shopper.update(product, 1)).items[0].quantity == 1


async def test_remove_deletes_the_line_and_a_missing_line_is_not_found(world):
    product = world.product()
    shopper = world.shopper()
    await shopper.add(product)
    assert list((await shopper.remove(product)).items) == []
    assert (await _error(shopper.remove(product))).code() == grpc.StatusCode.NOT_FOUND


async def test_clear_empties_the_cart_and_clearing_an_empty_cart_succeeds(world):
    shopper = world.shopper()
    await shopper.add(world.product(), 2)
    cart = await shopper.clear()
    assert (list(cart.items), cart.item_count) == ([], 0)
    assert list((await shopper.clear()).items) == []


# --- the catalog's changes ------------------------------------------------------------------


async def test_get_cart_flags_a_new_price_and_short_stock_without_changing_the_snapshot(world):
    product = world.product(price=_usd(10), stock=5)
    shopper = world.shopper()
    await shopper.add(product, 3)
    world.catalog.change(product, price=_usd(11), available_quantity=2)
    cart = await shopper.get()
    [line] = cart.items
    assert (line.unit_price.units, line.current_unit_price.units) == (10, 11)
    assert line.price_changed
    assert cart.attention_required
    assert line.availability == Item.AVAILABILITY_INSUFFICIENT_STOCK
    assert line.available_quantity == 2
    assert cart.subtotal.units == 30


async def test_get_cart_marks_archived_and_vanished_products_discontinued(world):
    archived, vanished = world.product(), world.product()
    shopper = world.shopper()
    await shopper.add(archived)
    await shopper.add(vanished)
    world.catalog.change(archived, state=ProductState.ARCHIVED)
    del world.catalog.views[vanished]
    cart = await shopper.get()
    assert [i.availability for i in cart.items] == [Item.AVAILABILITY_DISCONTINUED] * 2
    assert cart.attention_required


async def test_get_cart_while_the_catalog_is_down_shows_availability_unknown(world):
    product = world.product()
    shopper = world.shopper()
    await shopper.add(product, 2)
    world.catalog.down = True
    cart = await shopper.get()
    assert [(i.quantity, i.availability) for i in cart.items] == [
        (2, Item.AVAILABILITY_UNSPECIFIED)
    ]


async def test_refresh_accepts_the_catalogs_price_and_title_but_keeps_flagged_lines(world):
    cheaper, gone = world.product(price=_usd(10), title="Mug"), world.product()
    shopper = world.shopper()
    await shopper.add(cheaper, 2)
    await shopper.add(gone, 1)
    world.catalog.change(cheaper, price=_usd(8), title="Blue mug")
    world.catalog.change(gone, state=ProductState.ARCHIVED)
    cart = await shopper.refresh()
    first, second = cart.items
    assert (first.title, first.unit_price.units, first.price_changed) == ("Blue mug", 8, False)
    assert second.availability == Item.AVAILABILITY_DISCONTINUED
    assert cart.subtotal.units == 16 + second.unit_price.units
    assert next(i.unit_price.units for i in (await shopper.get()).items) == 8


# --- ownership ------------------------------------------------------------------------------


async def test_each_user_sees_and_changes_only_their_own_cart(world):
    product = world.product()
    ann, bob = world.shopper(), world.shopper()
    await ann.add(product, 2)
    assert list((await bob.get()).items) == []
    assert (await _error(bob.remove(product))).code() == grpc.StatusCode.NOT_FOUND
    assert (await _error(bob.update(product, 5))).code() == grpc.StatusCode.NOT_FOUND
    await bob.clear()
    assert [i.quantity for i in (await ann.get()).items] == [2]


async def test_every_rpc_needs_an_access_token(world):
    error = await _error(world.stub.GetCart(cart_service_pb2.GetCartRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    bad = [("authorization", "Bearer not-a-token")]
    error = await _error(world.stub.ClearCart(cart_service_pb2.ClearCartRequest(), metadata=bad))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- checkout -------------------------------------------------------------------------------


def _order_placed(user_id: str, lines: list[tuple[str, int]], *, from_cart: bool = True):
    return order_events_pb2.OrderPlaced(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        from_cart=from_cart,
        line_items=[order_pb2.LineItem(product_id=p, quantity=q) for p, q in lines],
    )


async def test_an_order_from_the_cart_removes_the_ordered_units_and_records_the_event_once(world):
    user_id = str(uuid.uuid4())
    shopper = world.shopper(user_id)
    ordered, partly, kept = world.product(price=_usd(3)), world.product(), world.product()
    await shopper.add(ordered, 2)
    await shopper.add(partly, 5)
    await shopper.add(kept, 1)
    placed = _order_placed(user_id, [(ordered, 2), (partly, 3)])
    subscriptions = consumers.subscriptions(world.app.servicers[0][1].handlers)
    handle = subscriptions[order_events_pb2.OrderPlaced]
    event = Event.of(placed, "order")
    await handle(placed, event)
    await handle(placed, event)  # redelivered
    cart = await shopper.get()
    assert [(i.product_id, i.quantity) for i in cart.items] == [(partly, 2), (kept, 1)]
    [checked_out] = [e for e in world.carts.events if isinstance(e, cart_events_pb2.CartCheckedOut)]
    assert (checked_out.user_id, checked_out.order_id) == (user_id, placed.order_id)
    assert [(i.product_id, i.quantity) for i in checked_out.items] == [(ordered, 2), (partly, 3)]
    assert checked_out.subtotal.units == 6 + 3 * 12 + 1  # 3 x 12.50 = 37.50
    assert checked_out.subtotal.nanos == 500_000_000
    [pending] = await world.carts.outbox.pending(10)
    assert pending.type == "emporium.cart.v1.CartCheckedOut"
    assert pending.source == "cart"


async def test_an_order_placed_with_its_own_items_leaves_the_cart_alone(world):
    user_id = str(uuid.uuid4())
    product = world.product()
    await world.shopper(user_id).add(product, 2)
    placed = _order_placed(user_id, [(product, 2)], from_cart=False)
    subscriptions = consumers.subscriptions(world.app.servicers[0][1].handlers)
    handle = subscriptions[order_events_pb2.OrderPlaced]
    await handle(placed, Event.of(placed, "order"))
    assert [i.quantity for i in (await world.shopper(user_id).get()).items] == [2]
    assert world.carts.events == []


# --- catalog events -------------------------------------------------------------------------


def _product_event(cls, product_id: str, *, units: int, state=None):
    product = product_pb2.Product(
        id=product_id,
        sku="SKU",
        title="Renamed",
        price=money_pb2.Money(currency_code="USD", units=units),
        state=state or product_pb2.Product.STATE_ACTIVE,
    )
    return cls(product=product)


async def test_product_updated_reprices_the_carts_that_hold_it_but_not_their_snapshot(world):
    product, other = world.product(price=_usd(10)), world.product(price=_usd(10))
    ann, bob = world.shopper(), world.shopper()
    before = await ann.add(product, 2)
    await bob.add(other, 1)
    handle = consumers.subscriptions(world.app.servicers[0][1].handlers)
    message = _product_event(catalog_events_pb2.ProductUpdated, product, units=14)
    await handle[catalog_events_pb2.ProductUpdated](message, Event.of(message, "catalog"))
    user_id = next(uid for uid, (c, _) in world.carts.carts.items() if c.line(product))
    [line] = (await world.carts.get(user_id)).lines
    assert line.current_unit_price == _usd(14)
    assert line.unit_price == _usd(10)
    assert line.title == before.items[0].title
    assert line.price_changed
    assert (await world.carts.get(user_id)).update_time == before.update_time.ToDatetime(
        tzinfo=line.add_time.tzinfo
    )
    [bob_line] = next(c for c, _ in world.carts.carts.values() if c.line(other)).lines
    assert bob_line.current_unit_price == _usd(10)


async def test_product_archived_marks_the_lines_discontinued(world):
    product = world.product(price=_usd(10))
    user_id = str(uuid.uuid4())
    await world.shopper(user_id).add(product, 1)
    handle = consumers.subscriptions(world.app.servicers[0][1].handlers)
    message = _product_event(
        catalog_events_pb2.ProductArchived,
        product,
        units=10,
        state=product_pb2.Product.STATE_ARCHIVED,
    )
    await handle[catalog_events_pb2.ProductArchived](message, Event.of(message, "catalog"))
    [line] = (await world.carts.get(user_id)).lines
    assert line.discontinued


async def test_clearing_a_cart_that_was_never_used_stores_nothing(world):
    cart = await world.shopper().clear()
    assert list(cart.items) == []
    assert world.carts.writes == 0


async def test_an_order_for_a_user_without_a_cart_creates_no_cart_but_records_the_event(world):
    user_id = str(uuid.uuid4())
    placed = _order_placed(user_id, [(world.product(), 1)])
    subscriptions = consumers.subscriptions(world.app.servicers[0][1].handlers)
    handle = subscriptions[order_events_pb2.OrderPlaced]
    await handle(placed, Event.of(placed, "order"))
    assert await world.carts.get(user_id) is None
    [event] = world.carts.events
    assert (event.order_id, list(event.items)) == (placed.order_id, [])
