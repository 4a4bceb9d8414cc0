"""The Catalog port over gRPC: `emporium.catalog.v1.CatalogService`'s public reads.

GetProduct / BatchGetProducts give the product, GetStock its available units. These RPCs are
public, so no token is sent: the cart sees what any shopper sees (drafts are NOT_FOUND). A
catalog that cannot be reached, or does not answer within the deadline, is UNAVAILABLE to the
cart's caller (503); a malformed id is a product that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc
from emporium.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc, product_pb2

from kit import errors
from services.cart import mapping
from services.cart.domain import ProductView

BATCH_LIMIT = 100
_MISSING = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


def _unavailable(error: grpc.aio.AioRpcError) -> errors.Unavailable:
    return errors.Unavailable(
        f"the catalog cannot be reached ({error.code().name})", reason="CATALOG_UNAVAILABLE"
    )


class GrpcCatalog:
    def __init__(self, address: str, *, timeout_seconds: float = 2.0) -> None:
        self.address = address
        self.timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._stub: catalog_service_pb2_grpc.CatalogServiceStub | None = None

    @property
    def stub(self) -> catalog_service_pb2_grpc.CatalogServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.enable_http_proxy", 0)]
            )
            self._stub = catalog_service_pb2_grpc.CatalogServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    async def _available(self, product_id: str) -> int:
        try:
            stock = await self.stub.GetStock(
                catalog_service_pb2.GetStockRequest(product_id=product_id), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _MISSING:
                return 0
            raise _unavailable(error) from error
        return stock.available_quantity

    async def _get(self, product_id: str) -> product_pb2.Product | None:
        try:
            return await self.stub.GetProduct(
                catalog_service_pb2.GetProductRequest(id=product_id), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _MISSING:
                return None
            raise _unavailable(error) from error

    async def _view(self, product: product_pb2.Product | None) -> ProductView | None:
        if product is None or product.state == product_pb2.Product.STATE_DRAFT:
            return None
        available = 0
        if product.state == product_pb2.Product.STATE_ACTIVE:
            available = await self._available(product.id)
        return mapping.product_view(product, available)

    async def product(self, product_id: str) -> ProductView | None:
        if not product_id:
            return None
        product, available = await asyncio.gather(
            self._get(product_id), self._available(product_id)
        )
        if product is None or product.state == product_pb2.Product.STATE_DRAFT:
            return None
        return mapping.product_view(product, available)

    async def _batch(self, ids: list[str]) -> list[product_pb2.Product | None]:
        try:
            reply = await self.stub.BatchGetProducts(
                catalog_service_pb2.BatchGetProductsRequest(ids=ids), timeout=self.timeout
            )
            by_id = {p.id: p for p in reply.products}
            return [by_id.get(i) for i in ids]
        except grpc.aio.AioRpcError as error:
            if error.code() not in (*_MISSING, grpc.StatusCode.UNIMPLEMENTED):
                raise _unavailable(error) from error
        # One of them is missing (the batch fails as a whole): ask one by one.
        return list(await asyncio.gather(*(self._get(i) for i in ids)))

    async def products(self, product_ids: Iterable[str]) -> dict[str, ProductView | None]:
        ids = [i for i in dict.fromkeys(product_ids) if i]
        products: list[product_pb2.Product | None] = []
        for start in range(0, len(ids), BATCH_LIMIT):
            products += await self._batch(ids[start : start + BATCH_LIMIT])
        views = await asyncio.gather(*(self._view(p) for p in products))
        return dict(zip(ids, views, strict=True))
