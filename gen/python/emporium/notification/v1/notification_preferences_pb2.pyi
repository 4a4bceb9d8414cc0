import datetime

from emporium.notification.v1 import notification_pb2 as _notification_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NotificationPreferences(_message.Message):
    __slots__ = ("user_id", "order_updates", "shipping_updates", "new_products", "product_reviews", "marketing", "quiet_hours", "update_time")
    class TopicSubscription(_message.Message):
        __slots__ = ("subscribed", "channels")
        SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
        CHANNELS_FIELD_NUMBER: _ClassVar[int]
        subscribed: bool
        channels: _containers.RepeatedScalarFieldContainer[_notification_pb2.Notification.Channel]
        def __init__(self, subscribed: _Optional[bool] = ..., channels: _Optional[_Iterable[_Union[_notification_pb2.Notification.Channel, str]]] = ...) -> None: ...
    class NewProductsSubscription(_message.Message):
        __slots__ = ("subscribed", "channels", "category_ids")
        SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
        CHANNELS_FIELD_NUMBER: _ClassVar[int]
        CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
        subscribed: bool
        channels: _containers.RepeatedScalarFieldContainer[_notification_pb2.Notification.Channel]
        category_ids: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, subscribed: _Optional[bool] = ..., channels: _Optional[_Iterable[_Union[_notification_pb2.Notification.Channel, str]]] = ..., category_ids: _Optional[_Iterable[str]] = ...) -> None: ...
    class QuietHours(_message.Message):
        __slots__ = ("enabled", "start_minute", "end_minute")
        ENABLED_FIELD_NUMBER: _ClassVar[int]
        START_MINUTE_FIELD_NUMBER: _ClassVar[int]
        END_MINUTE_FIELD_NUMBER: _ClassVar[int]
        enabled: bool
        start_minute: int
        end_minute: int
        def __init__(self, enabled: _Optional[bool] = ..., start_minute: _Optional[int] = ..., end_minute: _Optional[int] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_UPDATES_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_UPDATES_FIELD_NUMBER: _ClassVar[int]
    NEW_PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_REVIEWS_FIELD_NUMBER: _ClassVar[int]
    MARKETING_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    order_updates: NotificationPreferences.TopicSubscription
    shipping_updates: NotificationPreferences.TopicSubscription
    new_products: NotificationPreferences.NewProductsSubscription
    product_reviews: NotificationPreferences.TopicSubscription
    marketing: NotificationPreferences.TopicSubscription
    quiet_hours: NotificationPreferences.QuietHours
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., order_updates: _Optional[_Union[NotificationPreferences.TopicSubscription, _Mapping]] = ..., shipping_updates: _Optional[_Union[NotificationPreferences.TopicSubscription, _Mapping]] = ..., new_products: _Optional[_Union[NotificationPreferences.NewProductsSubscription, _Mapping]] = ..., product_reviews: _Optional[_Union[NotificationPreferences.TopicSubscription, _Mapping]] = ..., marketing: _Optional[_Union[NotificationPreferences.TopicSubscription, _Mapping]] = ..., quiet_hours: _Optional[_Union[NotificationPreferences.QuietHours, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
