import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookDelivery(_message.Message):
    __slots__ = ("id", "endpoint_id", "event_id", "event_type", "event_time", "payload", "state", "attempts", "next_attempt_time", "test", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[WebhookDelivery.State]
        STATE_PENDING: _ClassVar[WebhookDelivery.State]
        STATE_SUCCEEDED: _ClassVar[WebhookDelivery.State]
        STATE_FAILED: _ClassVar[WebhookDelivery.State]
        STATE_RETRYING: _ClassVar[WebhookDelivery.State]
    STATE_UNSPECIFIED: WebhookDelivery.State
    STATE_PENDING: WebhookDelivery.State
    STATE_SUCCEEDED: WebhookDelivery.State
    STATE_FAILED: WebhookDelivery.State
    STATE_RETRYING: WebhookDelivery.State
    class Attempt(_message.Message):
        __slots__ = ("response_status_code", "response_body", "latency", "error", "attempt_time")
        RESPONSE_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
        RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
        LATENCY_FIELD_NUMBER: _ClassVar[int]
        ERROR_FIELD_NUMBER: _ClassVar[int]
        ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
        response_status_code: int
        response_body: str
        latency: _duration_pb2.Duration
        error: str
        attempt_time: _timestamp_pb2.Timestamp
        def __init__(self, response_status_code: _Optional[int] = ..., response_body: _Optional[str] = ..., latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ..., attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    event_time: _timestamp_pb2.Timestamp
    payload: str
    state: WebhookDelivery.State
    attempts: _containers.RepeatedCompositeFieldContainer[WebhookDelivery.Attempt]
    next_attempt_time: _timestamp_pb2.Timestamp
    test: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., endpoint_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload: _Optional[str] = ..., state: _Optional[_Union[WebhookDelivery.State, str]] = ..., attempts: _Optional[_Iterable[_Union[WebhookDelivery.Attempt, _Mapping]]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
