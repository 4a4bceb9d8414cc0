import datetime

from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.notification.v1 import notification_pb2 as _notification_pb2
from emporium.notification.v1 import notification_preferences_pb2 as _notification_preferences_pb2
from emporium.notification.v1 import notification_template_pb2 as _notification_template_pb2
from emporium.notification.v1 import push_device_pb2 as _push_device_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListNotificationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "channel", "topic", "state", "unread_only", "user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UNREAD_ONLY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    channel: _notification_pb2.Notification.Channel
    topic: _notification_pb2.Notification.Topic
    state: _notification_pb2.Notification.State
    unread_only: bool
    user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., topic: _Optional[_Union[_notification_pb2.Notification.Topic, str]] = ..., state: _Optional[_Union[_notification_pb2.Notification.State, str]] = ..., unread_only: _Optional[bool] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "next_page_token")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[_notification_pb2.Notification]
    next_page_token: str
    def __init__(self, notifications: _Optional[_Iterable[_Union[_notification_pb2.Notification, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class MarkNotificationReadRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class MarkAllNotificationsReadRequest(_message.Message):
    __slots__ = ("channel", "end_time")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    channel: _notification_pb2.Notification.Channel
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MarkAllNotificationsReadResponse(_message.Message):
    __slots__ = ("marked_count",)
    MARKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    marked_count: int
    def __init__(self, marked_count: _Optional[int] = ...) -> None: ...

class CountUnreadNotificationsRequest(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: _notification_pb2.Notification.Channel
    def __init__(self, channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ...) -> None: ...

class CountUnreadNotificationsResponse(_message.Message):
    __slots__ = ("unread_count",)
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    unread_count: int
    def __init__(self, unread_count: _Optional[int] = ...) -> None: ...

class WatchNotificationsRequest(_message.Message):
    __slots__ = ("start_time",)
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchNotificationsResponse(_message.Message):
    __slots__ = ("notification", "unread_count", "unread_version")
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNREAD_VERSION_FIELD_NUMBER: _ClassVar[int]
    notification: _notification_pb2.Notification
    unread_count: int
    unread_version: int
    def __init__(self, notification: _Optional[_Union[_notification_pb2.Notification, _Mapping]] = ..., unread_count: _Optional[int] = ..., unread_version: _Optional[int] = ...) -> None: ...

class RetryNotificationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class SendTestNotificationRequest(_message.Message):
    __slots__ = ("request_id", "channel", "user_id", "address", "template_id", "variables", "subject", "body")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    channel: _notification_pb2.Notification.Channel
    user_id: str
    address: str
    template_id: str
    variables: _struct_pb2.Struct
    subject: str
    body: str
    def __init__(self, request_id: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., user_id: _Optional[str] = ..., address: _Optional[str] = ..., template_id: _Optional[str] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class GetNotificationPreferencesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateNotificationPreferencesRequest(_message.Message):
    __slots__ = ("notification_preferences", "update_mask")
    NOTIFICATION_PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    notification_preferences: _notification_preferences_pb2.NotificationPreferences
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, notification_preferences: _Optional[_Union[_notification_preferences_pb2.NotificationPreferences, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UnsubscribeNotificationTopicRequest(_message.Message):
    __slots__ = ("token", "one_click_body")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ONE_CLICK_BODY_FIELD_NUMBER: _ClassVar[int]
    token: str
    one_click_body: _httpbody_pb2.HttpBody
    def __init__(self, token: _Optional[str] = ..., one_click_body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class UnsubscribeNotificationTopicResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: _notification_pb2.Notification.Topic
    def __init__(self, topic: _Optional[_Union[_notification_pb2.Notification.Topic, str]] = ...) -> None: ...

class CreateNotificationTemplateRequest(_message.Message):
    __slots__ = ("request_id", "notification_template")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    notification_template: _notification_template_pb2.NotificationTemplate
    def __init__(self, request_id: _Optional[str] = ..., notification_template: _Optional[_Union[_notification_template_pb2.NotificationTemplate, _Mapping]] = ...) -> None: ...

class GetNotificationTemplateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListNotificationTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "event_type", "channel", "locale", "active_only")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    event_type: str
    channel: _notification_pb2.Notification.Channel
    locale: str
    active_only: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., event_type: _Optional[str] = ..., channel: _Optional[_Union[_notification_pb2.Notification.Channel, str]] = ..., locale: _Optional[str] = ..., active_only: _Optional[bool] = ...) -> None: ...

class ListNotificationTemplatesResponse(_message.Message):
    __slots__ = ("notification_templates", "next_page_token")
    NOTIFICATION_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notification_templates: _containers.RepeatedCompositeFieldContainer[_notification_template_pb2.NotificationTemplate]
    next_page_token: str
    def __init__(self, notification_templates: _Optional[_Iterable[_Union[_notification_template_pb2.NotificationTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateNotificationTemplateRequest(_message.Message):
    __slots__ = ("id", "notification_template", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    notification_template: _notification_template_pb2.NotificationTemplate
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., notification_template: _Optional[_Union[_notification_template_pb2.NotificationTemplate, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteNotificationTemplateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RenderNotificationTemplateRequest(_message.Message):
    __slots__ = ("id", "variables")
    ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    id: str
    variables: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., variables: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RenderNotificationTemplateResponse(_message.Message):
    __slots__ = ("subject", "body", "html_body")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    html_body: str
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., html_body: _Optional[str] = ...) -> None: ...

class CreatePushDeviceRequest(_message.Message):
    __slots__ = ("push_device",)
    PUSH_DEVICE_FIELD_NUMBER: _ClassVar[int]
    push_device: _push_device_pb2.PushDevice
    def __init__(self, push_device: _Optional[_Union[_push_device_pb2.PushDevice, _Mapping]] = ...) -> None: ...

class ListPushDevicesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPushDevicesResponse(_message.Message):
    __slots__ = ("push_devices", "next_page_token")
    PUSH_DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    push_devices: _containers.RepeatedCompositeFieldContainer[_push_device_pb2.PushDevice]
    next_page_token: str
    def __init__(self, push_devices: _Optional[_Iterable[_Union[_push_device_pb2.PushDevice, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeletePushDeviceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetWebPushConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WebPushConfig(_message.Message):
    __slots__ = ("vapid_public_key",)
    VAPID_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    vapid_public_key: str
    def __init__(self, vapid_public_key: _Optional[str] = ...) -> None: ...
