import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Notification(_message.Message):
    __slots__ = ("id", "user_id", "channel", "topic", "template_id", "template_version", "subject", "body", "recipient", "state", "failure_reason", "attempt_count", "source_event_id", "source_event_type", "test", "read_time", "create_time", "send_time", "deliver_time", "scheduled_time")
    class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHANNEL_UNSPECIFIED: _ClassVar[Notification.Channel]
        CHANNEL_EMAIL: _ClassVar[Notification.Channel]
        CHANNEL_SMS: _ClassVar[Notification.Channel]
        CHANNEL_PUSH: _ClassVar[Notification.Channel]
        CHANNEL_IN_APP: _ClassVar[Notification.Channel]
    CHANNEL_UNSPECIFIED: Notification.Channel
    CHANNEL_EMAIL: Notification.Channel
    CHANNEL_SMS: Notification.Channel
    CHANNEL_PUSH: Notification.Channel
    CHANNEL_IN_APP: Notification.Channel
    class Topic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TOPIC_UNSPECIFIED: _ClassVar[Notification.Topic]
        TOPIC_ACCOUNT: _ClassVar[Notification.Topic]
        TOPIC_ORDER_UPDATES: _ClassVar[Notification.Topic]
        TOPIC_SHIPPING_UPDATES: _ClassVar[Notification.Topic]
        TOPIC_NEW_PRODUCTS: _ClassVar[Notification.Topic]
        TOPIC_PRODUCT_REVIEWS: _ClassVar[Notification.Topic]
        TOPIC_MARKETING: _ClassVar[Notification.Topic]
    TOPIC_UNSPECIFIED: Notification.Topic
    TOPIC_ACCOUNT: Notification.Topic
    TOPIC_ORDER_UPDATES: Notification.Topic
    TOPIC_SHIPPING_UPDATES: Notification.Topic
    TOPIC_NEW_PRODUCTS: Notification.Topic
    TOPIC_PRODUCT_REVIEWS: Notification.Topic
    TOPIC_MARKETING: Notification.Topic
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Notification.State]
        STATE_QUEUED: _ClassVar[Notification.State]
        STATE_SENT: _ClassVar[Notification.State]
        STATE_DELIVERED: _ClassVar[Notification.State]
        STATE_FAILED: _ClassVar[Notification.State]
        STATE_SKIPPED_BY_PREFERENCE: _ClassVar[Notification.State]
    STATE_UNSPECIFIED: Notification.State
    STATE_QUEUED: Notification.State
    STATE_SENT: Notification.State
    STATE_DELIVERED: Notification.State
    STATE_FAILED: Notification.State
    STATE_SKIPPED_BY_PREFERENCE: Notification.State
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVER_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    channel: Notification.Channel
    topic: Notification.Topic
    template_id: str
    template_version: int
    subject: str
    body: str
    recipient: str
    state: Notification.State
    failure_reason: str
    attempt_count: int
    source_event_id: str
    source_event_type: str
    test: bool
    read_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    send_time: _timestamp_pb2.Timestamp
    deliver_time: _timestamp_pb2.Timestamp
    scheduled_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[_Union[Notification.Channel, str]] = ..., topic: _Optional[_Union[Notification.Topic, str]] = ..., template_id: _Optional[str] = ..., template_version: _Optional[int] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., recipient: _Optional[str] = ..., state: _Optional[_Union[Notification.State, str]] = ..., failure_reason: _Optional[str] = ..., attempt_count: _Optional[int] = ..., source_event_id: _Optional[str] = ..., source_event_type: _Optional[str] = ..., test: _Optional[bool] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deliver_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scheduled_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
