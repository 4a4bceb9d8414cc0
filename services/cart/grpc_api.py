"""The CartService servicer: decodes requests, calls a handler, encodes the answer.

The cart is always the caller's: the user id comes from the verified access token
(`auth.caller()`), never from the request.
"""

from __future__ import annotations

from datetime import timedelta

from emporium.cart.v1 import cart_service_pb2_grpc

from kit import auth
from services.cart import mapping
from services.cart.domain import Cart
from services.cart.handlers import CartHandlers


class CartService(cart_service_pb2_grpc.CartServiceServicer):
    def __init__(self, handlers: CartHandlers, *, ttl: timedelta) -> None:
        self.handlers = handlers
        self.ttl = ttl

    def _reply(self, cart: Cart):
        return mapping.cart_to_proto(cart, shop_currency=self.handlers.shop_currency, ttl=self.ttl)

    async def GetCart(self, request, context):
        return self._reply(await self.handlers.get_cart(auth.caller().user_id))

    async def AddCartItem(self, request, context):
        cart = await self.handlers.add_item(
            auth.caller().user_id, request.product_id, request.quantity
        )
        return self._reply(cart)

    async def UpdateCartItem(self, request, context):
        cart = await self.handlers.update_item(
            auth.caller().user_id,
            request.product_id,
            request.item.quantity,
            list(request.update_mask.paths),
        )
        return self._reply(cart)

    async def RemoveCartItem(self, request, context):
        return self._reply(
            await self.handlers.remove_item(auth.caller().user_id, request.product_id)
        )

    async def ClearCart(self, request, context):
        return self._reply(await self.handlers.clear(auth.caller().user_id))

    async def RefreshCart(self, request, context):
        return self._reply(await self.handlers.refresh(auth.caller().user_id))
