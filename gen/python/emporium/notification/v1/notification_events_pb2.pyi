from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.notification.v1 import notification_pb2 as _notification_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NotificationSent(_message.Message):
    __slots__ = ("notification_id", "user_id", "channel", "topic", "template_id", "source_event_id", "source_event_type", "attempt_count")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    user_id: str
    channel: _notification_pb2.Notification.Channel
    topic: _notification_pb2.Notification.Topic
    template_id: str
    source_event_id: str
    source_event_type: str
    attempt_count: int
    def __init__(self, notification_id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., topic: _Optional[_Union[_notification_pb2.Notification.Topic, str]] = ..., template_id: _Optional[str] = ..., source_event_id: _Optional[str] = ..., source_event_type: _Optional[str] = ..., attempt_count: _Optional[int] = ...) -> None: ...

class NotificationFailed(_message.Message):
    __slots__ = ("notification_id", "user_id", "channel", "topic", "template_id", "source_event_id", "source_event_type", "attempt_count", "failure_reason")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    user_id: str
    channel: _notification_pb2.Notification.Channel
    topic: _notification_pb2.Notification.Topic
    template_id: str
    source_event_id: str
    source_event_type: str
    attempt_count: int
    failure_reason: str
    def __init__(self, notification_id: _Optional[str] = ..., user_id: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., topic: _Optional[_Union[_notification_pb2.Notification.Topic, str]] = ..., template_id: _Optional[str] = ..., source_event_id: _Optional[str] = ..., source_event_type: _Optional[str] = ..., attempt_count: _Optional[int] = ..., failure_reason: _Optional[str] = ...) -> None: ...

class NewProductAnnouncementBatched(_message.Message):
    __slots__ = ("source_event_id", "product_id", "product_title", "price", "category_ids", "user_ids")
    SOURCE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_TITLE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    source_event_id: str
    product_id: str
    product_title: str
    price: _money_pb2.Money
    category_ids: _containers.RepeatedScalarFieldContainer[str]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, source_event_id: _Optional[str] = ..., product_id: _Optional[str] = ..., product_title: _Optional[str] = ..., price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., category_ids: _Optional[_Iterable[str]] = ..., user_ids: _Optional[_Iterable[str]] = ...) -> None: ...
