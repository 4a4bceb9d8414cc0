from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class WebhookEventType(_message.Message):
    __slots__ = ("name", "description", "domain")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    domain: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...
