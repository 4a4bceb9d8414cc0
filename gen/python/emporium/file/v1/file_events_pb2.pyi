from emporium.file.v1 import file_pb2 as _file_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FileUploaded(_message.Message):
    __slots__ = ("file", "product_id")
    FILE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    file: _file_pb2.File
    product_id: str
    def __init__(self, file: _Optional[_Union[_file_pb2.File, _Mapping]] = ..., product_id: _Optional[str] = ...) -> None: ...

class FileDeleted(_message.Message):
    __slots__ = ("file_id", "owner_id", "purpose", "product_id")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    file_id: str
    owner_id: str
    purpose: _file_pb2.File.Purpose
    product_id: str
    def __init__(self, file_id: _Optional[str] = ..., owner_id: _Optional[str] = ..., purpose: _Optional[_Union[_file_pb2.File.Purpose, str]] = ..., product_id: _Optional[str] = ...) -> None: ...
