import datetime

from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.user.v1 import user_pb2 as _user_pb2
from emporium.user.v1 import user_settings_pb2 as _user_settings_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserRegistered(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale", "settings")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    settings: _user_settings_pb2.UserSettings
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., settings: _Optional[_Union[_user_settings_pb2.UserSettings, _Mapping]] = ...) -> None: ...

class EmailVerificationRequested(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale", "token", "expire_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EmailVerified(_message.Message):
    __slots__ = ("user_id", "email")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class UserUpdated(_message.Message):
    __slots__ = ("user_id", "user", "update_mask", "previous_email", "locale")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_EMAIL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    user: _user_pb2.User
    update_mask: _field_mask_pb2.FieldMask
    previous_email: str
    locale: str
    def __init__(self, user_id: _Optional[str] = ..., user: _Optional[_Union[_user_pb2.User, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., previous_email: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

class UserSettingsUpdated(_message.Message):
    __slots__ = ("user_id", "settings", "update_mask")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    settings: _user_settings_pb2.UserSettings
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, user_id: _Optional[str] = ..., settings: _Optional[_Union[_user_settings_pb2.UserSettings, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class PasswordResetRequested(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale", "token", "expire_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    token: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PasswordChanged(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...

class UserDisabled(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale", "reason", "admin_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ADMIN_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    reason: str
    admin_user_id: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., reason: _Optional[str] = ..., admin_user_id: _Optional[str] = ...) -> None: ...

class UserEnabled(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale", "admin_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    admin_user_id: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ..., admin_user_id: _Optional[str] = ...) -> None: ...

class UserRolesChanged(_message.Message):
    __slots__ = ("user_id", "roles", "previous_roles", "admin_user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_ROLES_FIELD_NUMBER: _ClassVar[int]
    ADMIN_USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    roles: _containers.RepeatedScalarFieldContainer[_user_pb2.User.Role]
    previous_roles: _containers.RepeatedScalarFieldContainer[_user_pb2.User.Role]
    admin_user_id: str
    def __init__(self, user_id: _Optional[str] = ..., roles: _Optional[_Iterable[_Union[_user_pb2.User.Role, str]]] = ..., previous_roles: _Optional[_Iterable[_Union[_user_pb2.User.Role, str]]] = ..., admin_user_id: _Optional[str] = ...) -> None: ...

class UserDeleted(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "locale")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    locale: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., locale: _Optional[str] = ...) -> None: ...
