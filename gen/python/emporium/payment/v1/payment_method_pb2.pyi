import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentMethod(_message.Message):
    __slots__ = ("id", "user_id", "type", "card", "default_method", "provider", "create_time", "update_time")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[PaymentMethod.Type]
        TYPE_CARD: _ClassVar[PaymentMethod.Type]
    TYPE_UNSPECIFIED: PaymentMethod.Type
    TYPE_CARD: PaymentMethod.Type
    class Card(_message.Message):
        __slots__ = ("brand", "last4", "exp_month", "exp_year")
        class Brand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            BRAND_UNSPECIFIED: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_VISA: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_MASTERCARD: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_AMEX: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_DISCOVER: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_DINERS_CLUB: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_JCB: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_UNIONPAY: _ClassVar[PaymentMethod.Card.Brand]
            BRAND_OTHER: _ClassVar[PaymentMethod.Card.Brand]
        BRAND_UNSPECIFIED: PaymentMethod.Card.Brand
        BRAND_VISA: PaymentMethod.Card.Brand
        BRAND_MASTERCARD: PaymentMethod.Card.Brand
        BRAND_AMEX: PaymentMethod.Card.Brand
        BRAND_DISCOVER: PaymentMethod.Card.Brand
        BRAND_DINERS_CLUB: PaymentMethod.Card.Brand
        BRAND_JCB: PaymentMethod.Card.Brand
        BRAND_UNIONPAY: PaymentMethod.Card.Brand
        BRAND_OTHER: PaymentMethod.Card.Brand
        BRAND_FIELD_NUMBER: _ClassVar[int]
        LAST4_FIELD_NUMBER: _ClassVar[int]
        EXP_MONTH_FIELD_NUMBER: _ClassVar[int]
        EXP_YEAR_FIELD_NUMBER: _ClassVar[int]
        brand: PaymentMethod.Card.Brand
        last4: str
        exp_month: int
        exp_year: int
        def __init__(self, brand: _Optional[_Union[PaymentMethod.Card.Brand, str]] = ..., last4: _Optional[str] = ..., exp_month: _Optional[int] = ..., exp_year: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_METHOD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    type: PaymentMethod.Type
    card: PaymentMethod.Card
    default_method: bool
    provider: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., type: _Optional[_Union[PaymentMethod.Type, str]] = ..., card: _Optional[_Union[PaymentMethod.Card, _Mapping]] = ..., default_method: _Optional[bool] = ..., provider: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
