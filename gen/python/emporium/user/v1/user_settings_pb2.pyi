import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserSettings(_message.Message):
    __slots__ = ("user_id", "locale", "time_zone", "currency_code", "notification_channels", "marketing_consent", "marketing_consent_update_time", "update_time")
    class NotificationChannels(_message.Message):
        __slots__ = ("email_enabled", "sms_enabled", "push_enabled", "in_app_enabled")
        EMAIL_ENABLED_FIELD_NUMBER: _ClassVar[int]
        SMS_ENABLED_FIELD_NUMBER: _ClassVar[int]
        PUSH_ENABLED_FIELD_NUMBER: _ClassVar[int]
        IN_APP_ENABLED_FIELD_NUMBER: _ClassVar[int]
        email_enabled: bool
        sms_enabled: bool
        push_enabled: bool
        in_app_enabled: bool
        def __init__(self, email_enabled: _Optional[bool] = ..., sms_enabled: _Optional[bool] = ..., push_enabled: _Optional[bool] = ..., in_app_enabled: _Optional[bool] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    MARKETING_CONSENT_FIELD_NUMBER: _ClassVar[int]
    MARKETING_CONSENT_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    locale: str
    time_zone: str
    currency_code: str
    notification_channels: UserSettings.NotificationChannels
    marketing_consent: bool
    marketing_consent_update_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., locale: _Optional[str] = ..., time_zone: _Optional[str] = ..., currency_code: _Optional[str] = ..., notification_channels: _Optional[_Union[UserSettings.NotificationChannels, _Mapping]] = ..., marketing_consent: _Optional[bool] = ..., marketing_consent_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
