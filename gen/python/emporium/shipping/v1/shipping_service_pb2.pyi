from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.shipping.v1 import shipment_pb2 as _shipment_pb2
from emporium.shipping.v1 import shipping_option_pb2 as _shipping_option_pb2
from emporium.shipping.v1 import shipping_rate_pb2 as _shipping_rate_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.type import postal_address_pb2 as _postal_address_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListShippingOptionsRequest(_message.Message):
    __slots__ = ("destination", "page_size", "page_token")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    destination: _postal_address_pb2.PostalAddress
    page_size: int
    page_token: str
    def __init__(self, destination: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListShippingOptionsResponse(_message.Message):
    __slots__ = ("shipping_options", "next_page_token")
    SHIPPING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shipping_options: _containers.RepeatedCompositeFieldContainer[_shipping_option_pb2.ShippingOption]
    next_page_token: str
    def __init__(self, shipping_options: _Optional[_Iterable[_Union[_shipping_option_pb2.ShippingOption, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuoteShippingOptionsRequest(_message.Message):
    __slots__ = ("destination", "items")
    class Item(_message.Message):
        __slots__ = ("product_id", "quantity", "weight_grams")
        PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
        QUANTITY_FIELD_NUMBER: _ClassVar[int]
        WEIGHT_GRAMS_FIELD_NUMBER: _ClassVar[int]
        product_id: str
        quantity: int
        weight_grams: int
        def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ..., weight_grams: _Optional[int] = ...) -> None: ...
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    destination: _postal_address_pb2.PostalAddress
    items: _containers.RepeatedCompositeFieldContainer[QuoteShippingOptionsRequest.Item]
    def __init__(self, destination: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., items: _Optional[_Iterable[_Union[QuoteShippingOptionsRequest.Item, _Mapping]]] = ...) -> None: ...

class QuoteShippingOptionsResponse(_message.Message):
    __slots__ = ("shipping_options",)
    SHIPPING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    shipping_options: _containers.RepeatedCompositeFieldContainer[_shipping_option_pb2.ShippingOption]
    def __init__(self, shipping_options: _Optional[_Iterable[_Union[_shipping_option_pb2.ShippingOption, _Mapping]]] = ...) -> None: ...

class CreateShippingRateRequest(_message.Message):
    __slots__ = ("shipping_rate", "request_id")
    SHIPPING_RATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    shipping_rate: _shipping_rate_pb2.ShippingRate
    request_id: str
    def __init__(self, shipping_rate: _Optional[_Union[_shipping_rate_pb2.ShippingRate, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetShippingRateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListShippingRatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListShippingRatesResponse(_message.Message):
    __slots__ = ("shipping_rates", "next_page_token")
    SHIPPING_RATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shipping_rates: _containers.RepeatedCompositeFieldContainer[_shipping_rate_pb2.ShippingRate]
    next_page_token: str
    def __init__(self, shipping_rates: _Optional[_Iterable[_Union[_shipping_rate_pb2.ShippingRate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateShippingRateRequest(_message.Message):
    __slots__ = ("id", "shipping_rate", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_RATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    shipping_rate: _shipping_rate_pb2.ShippingRate
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., shipping_rate: _Optional[_Union[_shipping_rate_pb2.ShippingRate, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteShippingRateRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetShipmentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListShipmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "order_id", "state", "user_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    order_id: str
    state: _shipment_pb2.Shipment.State
    user_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., order_id: _Optional[str] = ..., state: _Optional[_Union[_shipment_pb2.Shipment.State, str]] = ..., user_id: _Optional[str] = ...) -> None: ...

class ListShipmentsResponse(_message.Message):
    __slots__ = ("shipments", "next_page_token")
    SHIPMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shipments: _containers.RepeatedCompositeFieldContainer[_shipment_pb2.Shipment]
    next_page_token: str
    def __init__(self, shipments: _Optional[_Iterable[_Union[_shipment_pb2.Shipment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchShipmentRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchShipmentResponse(_message.Message):
    __slots__ = ("shipment", "tracking_event")
    SHIPMENT_FIELD_NUMBER: _ClassVar[int]
    TRACKING_EVENT_FIELD_NUMBER: _ClassVar[int]
    shipment: _shipment_pb2.Shipment
    tracking_event: _shipment_pb2.TrackingEvent
    def __init__(self, shipment: _Optional[_Union[_shipment_pb2.Shipment, _Mapping]] = ..., tracking_event: _Optional[_Union[_shipment_pb2.TrackingEvent, _Mapping]] = ...) -> None: ...

class AddTrackingEventRequest(_message.Message):
    __slots__ = ("shipment_id", "request_id", "tracking_event", "estimated_delivery")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACKING_EVENT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    request_id: str
    tracking_event: _shipment_pb2.TrackingEvent
    estimated_delivery: _shipping_option_pb2.DeliveryWindow
    def __init__(self, shipment_id: _Optional[str] = ..., request_id: _Optional[str] = ..., tracking_event: _Optional[_Union[_shipment_pb2.TrackingEvent, _Mapping]] = ..., estimated_delivery: _Optional[_Union[_shipping_option_pb2.DeliveryWindow, _Mapping]] = ...) -> None: ...

class ListTrackingEventsRequest(_message.Message):
    __slots__ = ("shipment_id", "page_size", "page_token")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    page_size: int
    page_token: str
    def __init__(self, shipment_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTrackingEventsResponse(_message.Message):
    __slots__ = ("tracking_events", "next_page_token")
    TRACKING_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tracking_events: _containers.RepeatedCompositeFieldContainer[_shipment_pb2.TrackingEvent]
    next_page_token: str
    def __init__(self, tracking_events: _Optional[_Iterable[_Union[_shipment_pb2.TrackingEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
