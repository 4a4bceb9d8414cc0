import datetime

from emporium.shipping.v1 import shipping_option_pb2 as _shipping_option_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import postal_address_pb2 as _postal_address_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Shipment(_message.Message):
    __slots__ = ("id", "order_id", "user_id", "shipping_option_id", "carrier", "service_level", "tracking_number", "tracking_url", "destination", "items", "state", "estimated_delivery", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Shipment.State]
        STATE_PENDING: _ClassVar[Shipment.State]
        STATE_LABEL_CREATED: _ClassVar[Shipment.State]
        STATE_IN_TRANSIT: _ClassVar[Shipment.State]
        STATE_OUT_FOR_DELIVERY: _ClassVar[Shipment.State]
        STATE_DELIVERED: _ClassVar[Shipment.State]
        STATE_FAILED_DELIVERY: _ClassVar[Shipment.State]
        STATE_EXCEPTION: _ClassVar[Shipment.State]
        STATE_RETURNED: _ClassVar[Shipment.State]
        STATE_CANCELLED: _ClassVar[Shipment.State]
    STATE_UNSPECIFIED: Shipment.State
    STATE_PENDING: Shipment.State
    STATE_LABEL_CREATED: Shipment.State
    STATE_IN_TRANSIT: Shipment.State
    STATE_OUT_FOR_DELIVERY: Shipment.State
    STATE_DELIVERED: Shipment.State
    STATE_FAILED_DELIVERY: Shipment.State
    STATE_EXCEPTION: Shipment.State
    STATE_RETURNED: Shipment.State
    STATE_CANCELLED: Shipment.State
    class Item(_message.Message):
        __slots__ = ("product_id", "quantity")
        PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
        QUANTITY_FIELD_NUMBER: _ClassVar[int]
        product_id: str
        quantity: int
        def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_OPTION_ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    TRACKING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRACKING_URL_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    order_id: str
    user_id: str
    shipping_option_id: str
    carrier: str
    service_level: _shipping_option_pb2.ShippingOption.ServiceLevel
    tracking_number: str
    tracking_url: str
    destination: _postal_address_pb2.PostalAddress
    items: _containers.RepeatedCompositeFieldContainer[Shipment.Item]
    state: Shipment.State
    estimated_delivery: _shipping_option_pb2.DeliveryWindow
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., shipping_option_id: _Optional[str] = ..., carrier: _Optional[str] = ..., service_level: _Optional[_Union[_shipping_option_pb2.ShippingOption.ServiceLevel, str]] = ..., tracking_number: _Optional[str] = ..., tracking_url: _Optional[str] = ..., destination: _Optional[_Union[_postal_address_pb2.PostalAddress, _Mapping]] = ..., items: _Optional[_Iterable[_Union[Shipment.Item, _Mapping]]] = ..., state: _Optional[_Union[Shipment.State, str]] = ..., estimated_delivery: _Optional[_Union[_shipping_option_pb2.DeliveryWindow, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrackingEvent(_message.Message):
    __slots__ = ("id", "shipment_id", "state", "description", "location", "event_time", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    shipment_id: str
    state: Shipment.State
    description: str
    location: str
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., shipment_id: _Optional[str] = ..., state: _Optional[_Union[Shipment.State, str]] = ..., description: _Optional[str] = ..., location: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
