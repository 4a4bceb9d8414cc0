import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import money_pb2 as _money_pb2
from google.type import postal_address_pb2 as _postal_address_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Order(_message.Message):
    __slots__ = ("id", "user_id", "state", "line_items", "shipping_address", "shipping_option_id", "payment_method_id", "subtotal", "shipping_cost", "tax", "total", "cancel_reason", "payment_id", "shipment_id", "request_id", "create_time", "update_time", "checkout_expire_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Order.State]
        STATE_PENDING: _ClassVar[Order.State]
        STATE_CONFIRMED: _ClassVar[Order.State]
        STATE_PAID: _ClassVar[Order.State]
        STATE_SHIPPED: _ClassVar[Order.State]
        STATE_DELIVERED: _ClassVar[Order.State]
        STATE_CANCELLED: _ClassVar[Order.State]
    STATE_UNSPECIFIED: Order.State
    STATE_PENDING: Order.State
    STATE_CONFIRMED: Order.State
    STATE_PAID: Order.State
    STATE_SHIPPED: Order.State
    STATE_DELIVERED: Order.State
    STATE_CANCELLED: Order.State
    class CancelReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CANCEL_REASON_UNSPECIFIED: _ClassVar[Order.CancelReason]
        CANCEL_REASON_OUT_OF_STOCK: _ClassVar[Order.CancelReason]
        CANCEL_REASON_PAYMENT_FAILED: _ClassVar[Order.CancelReason]
        CANCEL_REASON_CUSTOMER_REQUESTED: _ClassVar[Order.CancelReason]
        CANCEL_REASON_ADMIN_REQUESTED: _ClassVar[Order.CancelReason]
        CANCEL_REASON_RESERVATION_EXPIRED: _ClassVar[Order.CancelReason]
        CANCEL_REASON_DEADLINE_PASSED: _ClassVar[Order.CancelReason]
    CANCEL_REASON_UNSPECIFIED: Order.CancelReason
    CANCEL_REASON_OUT_OF_STOCK: Order.CancelReason
    CANCEL_REASON_PAYMENT_FAILED: Order.CancelReason
    CANCEL_REASON_CUSTOMER_REQUESTED: Order.CancelReason
    CANCEL_REASON_ADMIN_REQUESTED: Order.CancelReason
    CANCEL_REASON_RESERVATION_EXPIRED: Order.CancelReason
    CANCEL_REASON_DEADLINE_PASSED: Order.CancelReason
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_COST_FIELD_NUMBER: _ClassVar[int]
    TAX_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CHECKOUT_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    state: Order.State
    line_items: _containers.RepeatedCompositeFieldContainer[LineItem]
    shipping_address: _postal_address_pb2.PostalAddress
    shipping_option_id: str
    payment_method_id: str
    subtotal: _money_pb2.Money
    shipping_cost: _money_pb2.Money
    tax: _money_pb2.Money
    total: _money_pb2.Money
    cancel_reason: Order.CancelReason
    payment_id: str
    shipment_id: str
    request_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    checkout_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., state: _Optional[_Union[Order.State, str]] = ..., line_items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., shipping_address: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., shipping_option_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., subtotal: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., shipping_cost: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., tax: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., cancel_reason: _Optional[_Union[Order.CancelReason, str]] = ..., payment_id: _Optional[str] = ..., shipment_id: _Optional[str] = ..., request_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., checkout_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("product_id", "sku", "title", "quantity", "unit_price", "total")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_price: _money_pb2.Money
    total: _money_pb2.Money
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("previous_state", "state", "change_time", "reason")
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    previous_state: Order.State
    state: Order.State
    change_time: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, previous_state: _Optional[_Union[Order.State, str]] = ..., state: _Optional[_Union[Order.State, str]] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...
