import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reservation(_message.Message):
    __slots__ = ("order_id", "state", "lines", "shortages", "release_reason", "expire_time", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Reservation.State]
        STATE_ACTIVE: _ClassVar[Reservation.State]
        STATE_COMMITTED: _ClassVar[Reservation.State]
        STATE_RELEASED: _ClassVar[Reservation.State]
        STATE_FAILED: _ClassVar[Reservation.State]
    STATE_UNSPECIFIED: Reservation.State
    STATE_ACTIVE: Reservation.State
    STATE_COMMITTED: Reservation.State
    STATE_RELEASED: Reservation.State
    STATE_FAILED: Reservation.State
    class ReleaseReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RELEASE_REASON_UNSPECIFIED: _ClassVar[Reservation.ReleaseReason]
        RELEASE_REASON_ORDER_CANCELLED: _ClassVar[Reservation.ReleaseReason]
        RELEASE_REASON_EXPIRED: _ClassVar[Reservation.ReleaseReason]
        RELEASE_REASON_ADMIN_REQUESTED: _ClassVar[Reservation.ReleaseReason]
    RELEASE_REASON_UNSPECIFIED: Reservation.ReleaseReason
    RELEASE_REASON_ORDER_CANCELLED: Reservation.ReleaseReason
    RELEASE_REASON_EXPIRED: Reservation.ReleaseReason
    RELEASE_REASON_ADMIN_REQUESTED: Reservation.ReleaseReason
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    SHORTAGES_FIELD_NUMBER: _ClassVar[int]
    RELEASE_REASON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    state: Reservation.State
    lines: _containers.RepeatedCompositeFieldContainer[ReservationLine]
    shortages: _containers.RepeatedCompositeFieldContainer[StockShortage]
    release_reason: Reservation.ReleaseReason
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., state: _Optional[_Union[Reservation.State, str]] = ..., lines: _Optional[_Iterable[_Union[ReservationLine, _Mapping]]] = ..., shortages: _Optional[_Iterable[_Union[StockShortage, _Mapping]]] = ..., release_reason: _Optional[_Union[Reservation.ReleaseReason, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReservationLine(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    quantity: int
    def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class StockShortage(_message.Message):
    __slots__ = ("product_id", "requested_quantity", "available_quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    requested_quantity: int
    available_quantity: int
    def __init__(self, product_id: _Optional[str] = ..., requested_quantity: _Optional[int] = ..., available_quantity: _Optional[int] = ...) -> None: ...
