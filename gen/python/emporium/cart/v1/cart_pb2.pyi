import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Cart(_message.Message):
    __slots__ = ("user_id", "items", "subtotal", "item_count", "attention_required", "update_time", "expire_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    ATTENTION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    items: _containers.RepeatedCompositeFieldContainer[CartItem]
    subtotal: _money_pb2.Money
    item_count: int
    attention_required: bool
    update_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[CartItem, _Mapping]]] = ..., subtotal: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., item_count: _Optional[int] = ..., attention_required: _Optional[bool] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CartItem(_message.Message):
    __slots__ = ("product_id", "sku", "title", "image_url", "quantity", "unit_price", "total", "current_unit_price", "price_changed", "availability", "available_quantity", "add_time")
    class Availability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        AVAILABILITY_UNSPECIFIED: _ClassVar[CartItem.Availability]
        AVAILABILITY_IN_STOCK: _ClassVar[CartItem.Availability]
        AVAILABILITY_INSUFFICIENT_STOCK: _ClassVar[CartItem.Availability]
        AVAILABILITY_OUT_OF_STOCK: _ClassVar[CartItem.Availability]
        AVAILABILITY_DISCONTINUED: _ClassVar[CartItem.Availability]
    AVAILABILITY_UNSPECIFIED: CartItem.Availability
    AVAILABILITY_IN_STOCK: CartItem.Availability
    AVAILABILITY_INSUFFICIENT_STOCK: CartItem.Availability
    AVAILABILITY_OUT_OF_STOCK: CartItem.Availability
    AVAILABILITY_DISCONTINUED: CartItem.Availability
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CURRENT_UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ADD_TIME_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    image_url: str
    quantity: int
    unit_price: _money_pb2.Money
    total: _money_pb2.Money
    current_unit_price: _money_pb2.Money
    price_changed: bool
    availability: CartItem.Availability
    available_quantity: int
    add_time: _timestamp_pb2.Timestamp
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., image_url: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., current_unit_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., price_changed: _Optional[bool] = ..., availability: _Optional[_Union[CartItem.Availability, str]] = ..., available_quantity: _Optional[int] = ..., add_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
