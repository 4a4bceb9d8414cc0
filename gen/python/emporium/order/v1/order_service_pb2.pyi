from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.order.v1 import order_pb2 as _order_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.type import postal_address_pb2 as _postal_address_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlaceOrderRequest(_message.Message):
    __slots__ = ("request_id", "items", "shipping_address", "shipping_option_id", "payment_method_id")
    class Item(_message.Message):
        __slots__ = ("product_id", "quantity")
        PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
        QUANTITY_FIELD_NUMBER: _ClassVar[int]
        product_id: str
        quantity: int
        def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    items: _containers.RepeatedCompositeFieldContainer[PlaceOrderRequest.Item]
    shipping_address: _postal_address_pb2.PostalAddress
    shipping_option_id: str
    payment_method_id: str
    def __init__(self, request_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[PlaceOrderRequest.Item, _Mapping]]] = ..., shipping_address: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., shipping_option_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _order_pb2.Order.State
    user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_order_pb2.Order.State, str]] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_order_pb2.Order]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_order_pb2.Order, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("id", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    note: str
    def __init__(self, id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class WatchOrderRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchOrderResponse(_message.Message):
    __slots__ = ("order", "change")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    order: _order_pb2.Order
    change: _order_pb2.StatusChange
    def __init__(self, order: _Optional[_Union[_order_pb2.Order, _Mapping]] = ..., change: _Optional[_Union[_order_pb2.StatusChange, _Mapping]] = ...) -> None: ...

class ListStatusChangesRequest(_message.Message):
    __slots__ = ("order_id", "page_size", "page_token")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    page_size: int
    page_token: str
    def __init__(self, order_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStatusChangesResponse(_message.Message):
    __slots__ = ("status_changes", "next_page_token")
    STATUS_CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status_changes: _containers.RepeatedCompositeFieldContainer[_order_pb2.StatusChange]
    next_page_token: str
    def __init__(self, status_changes: _Optional[_Iterable[_Union[_order_pb2.StatusChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
