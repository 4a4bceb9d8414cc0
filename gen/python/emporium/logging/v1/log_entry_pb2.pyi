import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogEntry(_message.Message):
    __slots__ = ("log_time", "observed_time", "service", "severity", "severity_text", "body", "trace_id", "span_id", "scope_name", "attributes", "resource_attributes")
    class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SEVERITY_UNSPECIFIED: _ClassVar[LogEntry.Severity]
        SEVERITY_TRACE: _ClassVar[LogEntry.Severity]
        SEVERITY_DEBUG: _ClassVar[LogEntry.Severity]
        SEVERITY_INFO: _ClassVar[LogEntry.Severity]
        SEVERITY_WARN: _ClassVar[LogEntry.Severity]
        SEVERITY_ERROR: _ClassVar[LogEntry.Severity]
        SEVERITY_FATAL: _ClassVar[LogEntry.Severity]
    SEVERITY_UNSPECIFIED: LogEntry.Severity
    SEVERITY_TRACE: LogEntry.Severity
    SEVERITY_DEBUG: LogEntry.Severity
    SEVERITY_INFO: LogEntry.Severity
    SEVERITY_WARN: LogEntry.Severity
    SEVERITY_ERROR: LogEntry.Severity
    SEVERITY_FATAL: LogEntry.Severity
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ResourceAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LOG_TIME_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TIME_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_TEXT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPE_NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    log_time: _timestamp_pb2.Timestamp
    observed_time: _timestamp_pb2.Timestamp
    service: str
    severity: LogEntry.Severity
    severity_text: str
    body: str
    trace_id: str
    span_id: str
    scope_name: str
    attributes: _containers.ScalarMap[str, str]
    resource_attributes: _containers.ScalarMap[str, str]
    def __init__(self, log_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., observed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., service: _Optional[str] = ..., severity: _Optional[_Union[LogEntry.Severity, str]] = ..., severity_text: _Optional[str] = ..., body: _Optional[str] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., scope_name: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., resource_attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...
