"""The OrderService servicer: decodes requests, calls a handler, encodes the answer.

The caller comes from the verified access token (`auth.caller()`), never from the request; the
token itself is forwarded to the cart and payment services for the caller's own reads.
"""

from __future__ import annotations

from emporium.order.v1 import order_service_pb2, order_service_pb2_grpc

from kit import auth, errors, paging
from services.order import mapping
from services.order.handlers import Item, OrderHandlers, PlaceOrder

LIST_DEFAULT, LIST_MAX = 20, 100
HISTORY_DEFAULT, HISTORY_MAX = 50, 100


def _token(context) -> str:
    return auth.bearer_token(dict(context.invocation_metadata() or ())) or ""


def _page_size(requested: int, default: int, maximum: int) -> int:
    # The one rule of every list (kit.paging): 0 is the default, above the maximum is clamped.
    return paging.page_size(requested, default=default, maximum=maximum)


class OrderService(order_service_pb2_grpc.OrderServiceServicer):
    def __init__(self, handlers: OrderHandlers) -> None:
        self.handlers = handlers

    async def PlaceOrder(self, request, context):
        place = PlaceOrder(
            request_id=request.request_id,
            items=tuple(Item(i.product_id, i.quantity) for i in request.items),
            address=(
                mapping.address_from_proto(request.shipping_address)
                if request.HasField("shipping_address")
                else None
            ),
            shipping_option_id=request.shipping_option_id,
            payment_method_id=request.payment_method_id,
        )
        order = await self.handlers.place_order(auth.caller(), _token(context), place)
        return mapping.order_to_proto(order)

    async def GetOrder(self, request, context):
        return mapping.order_to_proto(await self.handlers.get_order(auth.caller(), request.id))

    async def ListOrders(self, request, context):
        size = _page_size(request.page_size, LIST_DEFAULT, LIST_MAX)
        if request.state not in mapping.STATES_BACK and request.state != 0:
            raise errors.InvalidArgument("state", "is not a known state")
        scope = {"user_id": request.user_id, "state": int(request.state)}
        cursor = paging.decode_page_token(request.page_token, scope)
        orders, next_cursor = await self.handlers.list_orders(
            auth.caller(),
            user_id=request.user_id,
            state=mapping.STATES_BACK.get(request.state),
            cursor=cursor if isinstance(cursor, dict) else None,
            limit=size,
        )
        return order_service_pb2.ListOrdersResponse(
            orders=[mapping.order_to_proto(o) for o in orders],
            next_page_token=paging.encode_page_token(next_cursor, scope) if next_cursor else "",
        )

    async def CancelOrder(self, request, context):
        order = await self.handlers.cancel_order(auth.caller(), request.id, request.note)
        return mapping.order_to_proto(order)

    async def WatchOrder(self, request, context):
        async for order, change in self.handlers.watch(auth.caller(), request.id):
            yield order_service_pb2.WatchOrderResponse(
                order=mapping.order_to_proto(order),
                change=mapping.change_to_proto(change) if change else None,
            )

    async def ListStatusChanges(self, request, context):
        size = _page_size(request.page_size, HISTORY_DEFAULT, HISTORY_MAX)
        scope = {"order_id": request.order_id}
        cursor = paging.decode_page_token(request.page_token, scope)
        start = int(cursor.get("i", 0)) if isinstance(cursor, dict) else 0
        if not request.order_id.strip():
            raise errors.InvalidArgument("order_id", "is required")
        changes = await self.handlers.status_changes(auth.caller(), request.order_id)
        page = changes[start : start + size]
        more = start + size < len(changes)
        return order_service_pb2.ListStatusChangesResponse(
            status_changes=[mapping.change_to_proto(c) for c in page],
            next_page_token=paging.encode_page_token({"i": start + size}, scope) if more else "",
        )
