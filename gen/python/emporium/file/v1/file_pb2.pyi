import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class File(_message.Message):
    __slots__ = ("id", "owner_id", "purpose", "state", "filename", "content_type", "size_bytes", "width", "height", "uri", "thumbnails", "product_id", "alt_text", "sha256", "create_time", "update_time")
    class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PURPOSE_UNSPECIFIED: _ClassVar[File.Purpose]
        PURPOSE_USER_UPLOAD: _ClassVar[File.Purpose]
        PURPOSE_PRODUCT_IMAGE: _ClassVar[File.Purpose]
    PURPOSE_UNSPECIFIED: File.Purpose
    PURPOSE_USER_UPLOAD: File.Purpose
    PURPOSE_PRODUCT_IMAGE: File.Purpose
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[File.State]
        STATE_UPLOADING: _ClassVar[File.State]
        STATE_PROCESSING: _ClassVar[File.State]
        STATE_READY: _ClassVar[File.State]
    STATE_UNSPECIFIED: File.State
    STATE_UPLOADING: File.State
    STATE_PROCESSING: File.State
    STATE_READY: File.State
    ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    THUMBNAILS_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ALT_TEXT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    owner_id: str
    purpose: File.Purpose
    state: File.State
    filename: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    uri: str
    thumbnails: _containers.RepeatedCompositeFieldContainer[Thumbnail]
    product_id: str
    alt_text: str
    sha256: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., owner_id: _Optional[str] = ..., purpose: _Optional[_Union[File.Purpose, str]] = ..., state: _Optional[_Union[File.State, str]] = ..., filename: _Optional[str] = ..., content_type: _Optional[str] = ..., size_bytes: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., uri: _Optional[str] = ..., thumbnails: _Optional[_Iterable[_Union[Thumbnail, _Mapping]]] = ..., product_id: _Optional[str] = ..., alt_text: _Optional[str] = ..., sha256: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Thumbnail(_message.Message):
    __slots__ = ("size", "width", "height", "content_type", "uri")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    size: int
    width: int
    height: int
    content_type: str
    uri: str
    def __init__(self, size: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., content_type: _Optional[str] = ..., uri: _Optional[str] = ...) -> None: ...

class Upload(_message.Message):
    __slots__ = ("file", "method", "url", "fields", "max_size_bytes", "expire_time")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    file: File
    method: str
    url: str
    fields: _containers.ScalarMap[str, str]
    max_size_bytes: int
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, file: _Optional[_Union[File, _Mapping]] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., max_size_bytes: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
