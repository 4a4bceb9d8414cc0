import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LoggedService(_message.Message):
    __slots__ = ("name", "version", "last_seen_time", "log_count", "error_log_count", "span_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LOG_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_LOG_COUNT_FIELD_NUMBER: _ClassVar[int]
    SPAN_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    last_seen_time: _timestamp_pb2.Timestamp
    log_count: int
    error_log_count: int
    span_count: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., log_count: _Optional[int] = ..., error_log_count: _Optional[int] = ..., span_count: _Optional[int] = ...) -> None: ...
