import datetime

from emporium.notification.v1 import notification_pb2 as _notification_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NotificationTemplate(_message.Message):
    __slots__ = ("id", "display_name", "event_type", "topic", "channel", "locale", "subject_template", "body_template", "html_body_template", "active", "version", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    BODY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    event_type: str
    topic: _notification_pb2.Notification.Topic
    channel: _notification_pb2.Notification.Channel
    locale: str
    subject_template: str
    body_template: str
    html_body_template: str
    active: bool
    version: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., event_type: _Optional[str] = ..., topic: _Optional[_Union[_notification_pb2.Notification.Topic, str]] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., locale: _Optional[str] = ..., subject_template: _Optional[str] = ..., body_template: _Optional[str] = ..., html_body_template: _Optional[str] = ..., active: _Optional[bool] = ..., version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
