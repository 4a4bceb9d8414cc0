"""The Catalog, Cart, Shipping and Payments ports over gRPC, to the services that own them.

Catalog reads are public (no token); the cart and payment-method reads are the caller's own, so
the caller's bearer token is forwarded. A dependency that cannot be reached, or does not answer
within the deadline, is UNAVAILABLE to the caller (503). Channels open on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from emporium.cart.v1 import cart_service_pb2, cart_service_pb2_grpc
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc, product_pb2
from emporium.payment.v1 import payment_service_pb2, payment_service_pb2_grpc
from emporium.shipping.v1 import shipping_service_pb2, shipping_service_pb2_grpc

from kit import errors
from services.order import mapping
from services.order.domain import Address, Money
from services.order.ports import PaymentMethod, Product

_MISSING = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
BATCH_LIMIT = 100


class _Client:
    service = ""

    def __init__(self, address: str, stub_class, *, timeout_seconds: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout_seconds
        self._stub_class = stub_class
        self._channel: grpc.aio.Channel | None = None
        self._stub = None

    @property
    def stub(self):
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.enable_http_proxy", 0)]
            )
            self._stub = self._stub_class(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def unavailable(self, error: grpc.aio.AioRpcError) -> errors.Unavailable:
        return errors.Unavailable(
            f"the {self.service} service cannot be reached ({error.code().name})",
            reason=f"{self.service.upper()}_UNAVAILABLE",
        )


def _auth(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


class GrpcCatalog(_Client):
    service = "catalog"

    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        super().__init__(
            address, catalog_service_pb2_grpc.CatalogServiceStub, timeout_seconds=timeout_seconds
        )

    async def _get(self, product_id: str) -> product_pb2.Product | None:
        try:
            return await self.stub.GetProduct(
                catalog_service_pb2.GetProductRequest(id=product_id), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _MISSING:
                return None
            raise self.unavailable(error) from error

    async def _batch(self, ids: list[str]) -> list[product_pb2.Product | None]:
        try:
            reply = await self.stub.BatchGetProducts(
                catalog_service_pb2.BatchGetProductsRequest(ids=ids), timeout=self.timeout
            )
            by_id = {p.id: p for p in reply.products}
            return [by_id.get(i) for i in ids]
        except grpc.aio.AioRpcError as error:
            if error.code() not in _MISSING:
                raise self.unavailable(error) from error
        # One of them is missing (the batch fails as a whole): ask one by one.
        return list(await asyncio.gather(*(self._get(i) for i in ids)))

    async def products(self, product_ids: Sequence[str]) -> dict[str, Product | None]:
        ids = list(dict.fromkeys(product_ids))
        found: list[product_pb2.Product | None] = []
        for start in range(0, len(ids), BATCH_LIMIT):
            found += await self._batch(ids[start : start + BATCH_LIMIT])
        result: dict[str, Product | None] = {}
        for product_id, product in zip(ids, found, strict=True):
            if product is None or product.state == product_pb2.Product.STATE_DRAFT:
                result[product_id] = None
                continue
            result[product_id] = Product(
                id=product.id,
                sku=product.sku,
                title=product.title,
                price=mapping.money_from_proto(product.price),
                active=product.state == product_pb2.Product.STATE_ACTIVE,
                weight_grams=product.weight_grams,
            )
        return result


class GrpcCart(_Client):
    service = "cart"

    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        super().__init__(
            address, cart_service_pb2_grpc.CartServiceStub, timeout_seconds=timeout_seconds
        )

    async def items(self, token: str) -> list[tuple[str, int]]:
        try:
            cart = await self.stub.GetCart(
                cart_service_pb2.GetCartRequest(), metadata=_auth(token), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise errors.Unauthenticated("the cart refused the access token") from error
            raise self.unavailable(error) from error
        return [(item.product_id, item.quantity) for item in cart.items]


class GrpcShipping(_Client):
    service = "shipping"

    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        super().__init__(
            address, shipping_service_pb2_grpc.ShippingServiceStub, timeout_seconds=timeout_seconds
        )

    async def quote(
        self, destination: Address, items: Sequence[tuple[str, int, int]]
    ) -> dict[str, Money]:
        request = shipping_service_pb2.QuoteShippingOptionsRequest(
            destination=mapping.address_to_proto(destination),
            items=[
                shipping_service_pb2.QuoteShippingOptionsRequest.Item(
                    product_id=p, quantity=q, weight_grams=max(w, 0)
                )
                for p, q, w in items
            ],
        )
        try:
            reply = await self.stub.QuoteShippingOptions(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise errors.InvalidArgument("shipping_address", error.details() or "") from error
            raise self.unavailable(error) from error
        return {o.id: mapping.money_from_proto(o.price) for o in reply.shipping_options}


class GrpcPayments(_Client):
    service = "payment"

    def __init__(self, address: str, *, timeout_seconds: float = 5.0) -> None:
        super().__init__(
            address, payment_service_pb2_grpc.PaymentServiceStub, timeout_seconds=timeout_seconds
        )

    async def payment_method(self, token: str, payment_method_id: str) -> PaymentMethod | None:
        try:
            method = await self.stub.GetPaymentMethod(
                payment_service_pb2.GetPaymentMethodRequest(id=payment_method_id),
                metadata=_auth(token),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _MISSING:
                return None
            if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise errors.Unauthenticated("the payment service refused the token") from error
            raise self.unavailable(error) from error
        return PaymentMethod(
            id=method.id, exp_month=method.card.exp_month, exp_year=method.card.exp_year
        )
