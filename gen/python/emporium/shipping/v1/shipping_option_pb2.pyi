import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import date_pb2 as _date_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShippingOption(_message.Message):
    __slots__ = ("id", "carrier", "service_level", "display_name", "price", "min_business_days", "max_business_days", "estimated_delivery", "expire_time")
    class ServiceLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SERVICE_LEVEL_UNSPECIFIED: _ClassVar[ShippingOption.ServiceLevel]
        SERVICE_LEVEL_ECONOMY: _ClassVar[ShippingOption.ServiceLevel]
        SERVICE_LEVEL_STANDARD: _ClassVar[ShippingOption.ServiceLevel]
        SERVICE_LEVEL_EXPRESS: _ClassVar[ShippingOption.ServiceLevel]
        SERVICE_LEVEL_NEXT_DAY: _ClassVar[ShippingOption.ServiceLevel]
    SERVICE_LEVEL_UNSPECIFIED: ShippingOption.ServiceLevel
    SERVICE_LEVEL_ECONOMY: ShippingOption.ServiceLevel
    SERVICE_LEVEL_STANDARD: ShippingOption.ServiceLevel
    SERVICE_LEVEL_EXPRESS: ShippingOption.ServiceLevel
    SERVICE_LEVEL_NEXT_DAY: ShippingOption.ServiceLevel
    ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    MIN_BUSINESS_DAYS_FIELD_NUMBER: _ClassVar[int]
    MAX_BUSINESS_DAYS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    carrier: str
    service_level: ShippingOption.ServiceLevel
    display_name: str
    price: _money_pb2.Money
    min_business_days: int
    max_business_days: int
    estimated_delivery: DeliveryWindow
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., carrier: _Optional[str] = ..., service_level: _Optional[_Union[ShippingOption.ServiceLevel, str]] = ..., display_name: _Optional[str] = ..., price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., min_business_days: _Optional[int] = ..., max_business_days: _Optional[int] = ..., estimated_delivery: _Optional[_Union[DeliveryWindow, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliveryWindow(_message.Message):
    __slots__ = ("earliest_date", "latest_date")
    EARLIEST_DATE_FIELD_NUMBER: _ClassVar[int]
    LATEST_DATE_FIELD_NUMBER: _ClassVar[int]
    earliest_date: _date_pb2.Date
    latest_date: _date_pb2.Date
    def __init__(self, earliest_date: _Optional[_Union[_date_pb2.Date, _Mapping]] = ..., latest_date: _Optional[_Union[_date_pb2.Date, _Mapping]] = ...) -> None: ...
