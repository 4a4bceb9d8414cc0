import datetime

from emporium.shipping.v1 import shipping_option_pb2 as _shipping_option_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShippingRate(_message.Message):
    __slots__ = ("id", "carrier", "service_level", "display_name", "region_codes", "base_price", "price_per_kg", "max_weight_grams", "min_business_days", "max_business_days", "disabled", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    REGION_CODES_FIELD_NUMBER: _ClassVar[int]
    BASE_PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_KG_FIELD_NUMBER: _ClassVar[int]
    MAX_WEIGHT_GRAMS_FIELD_NUMBER: _ClassVar[int]
    MIN_BUSINESS_DAYS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUSINESS_DAYS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    carrier: str
    service_level: _shipping_option_pb2.ShippingOption.ServiceLevel
    display_name: str
    region_codes: _containers.RepeatedScalarFieldContainer[str]
    base_price: _money_pb2.Money
    price_per_kg: _money_pb2.Money
    max_weight_grams: int
    min_business_days: int
    max_business_days: int
    disabled: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., carrier: _Optional[str] = ..., service_level: _Optional[_Union[_shipping_option_pb2.ShippingOption.ServiceLevel, str]] = ..., display_name: _Optional[str] = ..., region_codes: _Optional[_Iterable[str]] = ..., base_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., price_per_kg: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., max_weight_grams: _Optional[int] = ..., min_business_days: _Optional[int] = ..., max_business_days: _Optional[int] = ..., disabled: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
