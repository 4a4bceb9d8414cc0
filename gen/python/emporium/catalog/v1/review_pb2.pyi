import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Review(_message.Message):
    __slots__ = ("id", "product_id", "reviewer_id", "rating", "title", "body", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    product_id: str
    reviewer_id: str
    rating: int
    title: str
    body: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., product_id: _Optional[str] = ..., reviewer_id: _Optional[str] = ..., rating: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RatingSummary(_message.Message):
    __slots__ = ("product_id", "rating_average", "rating_count", "one_star_count", "two_star_count", "three_star_count", "four_star_count", "five_star_count")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    ONE_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    TWO_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    THREE_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    FOUR_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIVE_STAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    rating_average: float
    rating_count: int
    one_star_count: int
    two_star_count: int
    three_star_count: int
    four_star_count: int
    five_star_count: int
    def __init__(self, product_id: _Optional[str] = ..., rating_average: _Optional[float] = ..., rating_count: _Optional[int] = ..., one_star_count: _Optional[int] = ..., two_star_count: _Optional[int] = ..., three_star_count: _Optional[int] = ..., four_star_count: _Optional[int] = ..., five_star_count: _Optional[int] = ...) -> None: ...
