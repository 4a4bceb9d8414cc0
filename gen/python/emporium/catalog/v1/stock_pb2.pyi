import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Stock(_message.Message):
    __slots__ = ("product_id", "available_quantity", "on_hand_quantity", "reserved_quantity", "update_time")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    available_quantity: int
    on_hand_quantity: int
    reserved_quantity: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, product_id: _Optional[str] = ..., available_quantity: _Optional[int] = ..., on_hand_quantity: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StockAdjustment(_message.Message):
    __slots__ = ("id", "product_id", "delta", "on_hand_quantity", "reason", "note", "user_id", "request_id", "create_time")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[StockAdjustment.Reason]
        REASON_RESTOCK: _ClassVar[StockAdjustment.Reason]
        REASON_CYCLE_COUNT: _ClassVar[StockAdjustment.Reason]
        REASON_DAMAGED: _ClassVar[StockAdjustment.Reason]
        REASON_RETURNED: _ClassVar[StockAdjustment.Reason]
        REASON_OTHER: _ClassVar[StockAdjustment.Reason]
    REASON_UNSPECIFIED: StockAdjustment.Reason
    REASON_RESTOCK: StockAdjustment.Reason
    REASON_CYCLE_COUNT: StockAdjustment.Reason
    REASON_DAMAGED: StockAdjustment.Reason
    REASON_RETURNED: StockAdjustment.Reason
    REASON_OTHER: StockAdjustment.Reason
    ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    product_id: str
    delta: int
    on_hand_quantity: int
    reason: StockAdjustment.Reason
    note: str
    user_id: str
    request_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., product_id: _Optional[str] = ..., delta: _Optional[int] = ..., on_hand_quantity: _Optional[int] = ..., reason: _Optional[_Union[StockAdjustment.Reason, str]] = ..., note: _Optional[str] = ..., user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
