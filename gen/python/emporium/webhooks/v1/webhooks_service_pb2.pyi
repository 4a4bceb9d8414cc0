import datetime

from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.webhooks.v1 import webhook_delivery_pb2 as _webhook_delivery_pb2
from emporium.webhooks.v1 import webhook_endpoint_pb2 as _webhook_endpoint_pb2
from emporium.webhooks.v1 import webhook_event_type_pb2 as _webhook_event_type_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateWebhookEndpointRequest(_message.Message):
    __slots__ = ("request_id", "webhook_endpoint")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    webhook_endpoint: _webhook_endpoint_pb2.WebhookEndpoint
    def __init__(self, request_id: _Optional[str] = ..., webhook_endpoint: _Optional[_Union[_webhook_endpoint_pb2.WebhookEndpoint, _Mapping]] = ...) -> None: ...

class ListWebhookEndpointsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "event_type")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _webhook_endpoint_pb2.WebhookEndpoint.State
    event_type: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_webhook_endpoint_pb2.WebhookEndpoint.State, str]] = ..., event_type: _Optional[str] = ...) -> None: ...

class ListWebhookEndpointsResponse(_message.Message):
    __slots__ = ("webhook_endpoints", "next_page_token")
    WEBHOOK_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    webhook_endpoints: _containers.RepeatedCompositeFieldContainer[_webhook_endpoint_pb2.WebhookEndpoint]
    next_page_token: str
    def __init__(self, webhook_endpoints: _Optional[_Iterable[_Union[_webhook_endpoint_pb2.WebhookEndpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetWebhookEndpointRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UpdateWebhookEndpointRequest(_message.Message):
    __slots__ = ("id", "webhook_endpoint", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    webhook_endpoint: _webhook_endpoint_pb2.WebhookEndpoint
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., webhook_endpoint: _Optional[_Union[_webhook_endpoint_pb2.WebhookEndpoint, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteWebhookEndpointRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RotateWebhookSecretRequest(_message.Message):
    __slots__ = ("id", "previous_secret_ttl")
    ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRET_TTL_FIELD_NUMBER: _ClassVar[int]
    id: str
    previous_secret_ttl: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., previous_secret_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SendTestWebhookRequest(_message.Message):
    __slots__ = ("id", "event_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_type: str
    def __init__(self, id: _Optional[str] = ..., event_type: _Optional[str] = ...) -> None: ...

class RedeliverFailedWebhookDeliveriesRequest(_message.Message):
    __slots__ = ("id", "start_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RedeliverFailedWebhookDeliveriesResponse(_message.Message):
    __slots__ = ("redelivered_count",)
    REDELIVERED_COUNT_FIELD_NUMBER: _ClassVar[int]
    redelivered_count: int
    def __init__(self, redelivered_count: _Optional[int] = ...) -> None: ...

class ListWebhookEventTypesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "domain")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    domain: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class ListWebhookEventTypesResponse(_message.Message):
    __slots__ = ("webhook_event_types", "next_page_token")
    WEBHOOK_EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    webhook_event_types: _containers.RepeatedCompositeFieldContainer[_webhook_event_type_pb2.WebhookEventType]
    next_page_token: str
    def __init__(self, webhook_event_types: _Optional[_Iterable[_Union[_webhook_event_type_pb2.WebhookEventType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesRequest(_message.Message):
    __slots__ = ("endpoint_id", "page_size", "page_token", "state", "event_type", "event_id")
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    page_size: int
    page_token: str
    state: _webhook_delivery_pb2.WebhookDelivery.State
    event_type: str
    event_id: str
    def __init__(self, endpoint_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_webhook_delivery_pb2.WebhookDelivery.State, str]] = ..., event_type: _Optional[str] = ..., event_id: _Optional[str] = ...) -> None: ...

class ListWebhookDeliveriesResponse(_message.Message):
    __slots__ = ("webhook_deliveries", "next_page_token")
    WEBHOOK_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    webhook_deliveries: _containers.RepeatedCompositeFieldContainer[_webhook_delivery_pb2.WebhookDelivery]
    next_page_token: str
    def __init__(self, webhook_deliveries: _Optional[_Iterable[_Union[_webhook_delivery_pb2.WebhookDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetWebhookDeliveryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RedeliverWebhookEventRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...
