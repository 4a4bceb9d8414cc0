import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushDevice(_message.Message):
    __slots__ = ("id", "user_id", "platform", "token", "display_name", "create_time", "last_send_time", "web_push_keys")
    class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PLATFORM_UNSPECIFIED: _ClassVar[PushDevice.Platform]
        PLATFORM_FCM: _ClassVar[PushDevice.Platform]
        PLATFORM_APNS: _ClassVar[PushDevice.Platform]
        PLATFORM_WEB_PUSH: _ClassVar[PushDevice.Platform]
    PLATFORM_UNSPECIFIED: PushDevice.Platform
    PLATFORM_FCM: PushDevice.Platform
    PLATFORM_APNS: PushDevice.Platform
    PLATFORM_WEB_PUSH: PushDevice.Platform
    class WebPushKeys(_message.Message):
        __slots__ = ("p256dh", "auth")
        P256DH_FIELD_NUMBER: _ClassVar[int]
        AUTH_FIELD_NUMBER: _ClassVar[int]
        p256dh: str
        auth: str
        def __init__(self, p256dh: _Optional[str] = ..., auth: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    WEB_PUSH_KEYS_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    platform: PushDevice.Platform
    token: str
    display_name: str
    create_time: _timestamp_pb2.Timestamp
    last_send_time: _timestamp_pb2.Timestamp
    web_push_keys: PushDevice.WebPushKeys
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., platform: _Optional[_Union[PushDevice.Platform, str]] = ..., token: _Optional[str] = ..., display_name: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., web_push_keys: _Optional[_Union[PushDevice.WebPushKeys, _Mapping]] = ...) -> None: ...
