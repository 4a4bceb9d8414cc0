from emporium.order.v1 import order_pb2 as _order_pb2
from google.type import money_pb2 as _money_pb2
from google.type import postal_address_pb2 as _postal_address_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderPlaced(_message.Message):
    __slots__ = ("order_id", "user_id", "line_items", "shipping_address", "shipping_option_id", "payment_method_id", "total", "from_cart")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FROM_CART_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    line_items: _containers.RepeatedCompositeFieldContainer[_order_pb2.LineItem]
    shipping_address: _postal_address_pb2.PostalAddress
    shipping_option_id: str
    payment_method_id: str
    total: _money_pb2.Money
    from_cart: bool
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., line_items: _Optional[_Iterable[_Union[_order_pb2.LineItem, _Mapping]]] = ..., shipping_address: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., shipping_option_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., from_cart: _Optional[bool] = ...) -> None: ...

class OrderConfirmed(_message.Message):
    __slots__ = ("order_id", "user_id", "payment_method_id", "total", "shipping_address", "shipping_option_id", "line_items")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    payment_method_id: str
    total: _money_pb2.Money
    shipping_address: _postal_address_pb2.PostalAddress
    shipping_option_id: str
    line_items: _containers.RepeatedCompositeFieldContainer[_order_pb2.LineItem]
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., shipping_address: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., shipping_option_id: _Optional[str] = ..., line_items: _Optional[_Iterable[_Union[_order_pb2.LineItem, _Mapping]]] = ...) -> None: ...

class OrderCancelled(_message.Message):
    __slots__ = ("order_id", "user_id", "reason", "line_items", "payment_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    reason: _order_pb2.Order.CancelReason
    line_items: _containers.RepeatedCompositeFieldContainer[_order_pb2.LineItem]
    payment_id: str
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., reason: _Optional[_Union[_order_pb2.Order.CancelReason, str]] = ..., line_items: _Optional[_Iterable[_Union[_order_pb2.LineItem, _Mapping]]] = ..., payment_id: _Optional[str] = ...) -> None: ...

class OrderStatusChanged(_message.Message):
    __slots__ = ("order_id", "user_id", "change")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    user_id: str
    change: _order_pb2.StatusChange
    def __init__(self, order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., change: _Optional[_Union[_order_pb2.StatusChange, _Mapping]] = ...) -> None: ...
