from emporium.shipping.v1 import shipment_pb2 as _shipment_pb2
from emporium.shipping.v1 import shipping_option_pb2 as _shipping_option_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShipmentCreated(_message.Message):
    __slots__ = ("shipment_id", "order_id", "user_id", "carrier", "tracking_number", "tracking_url", "state", "estimated_delivery")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    TRACKING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRACKING_URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    order_id: str
    user_id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    state: _shipment_pb2.Shipment.State
    estimated_delivery: _shipping_option_pb2.DeliveryWindow
    def __init__(self, shipment_id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., carrier: _Optional[str] = ..., tracking_number: _Optional[str] = ..., tracking_url: _Optional[str] = ..., state: _Optional[_Union[_shipment_pb2.Shipment.State, str]] = ..., estimated_delivery: _Optional[_Union[_shipping_option_pb2.DeliveryWindow, _Mapping]] = ...) -> None: ...

class ShipmentStatusChanged(_message.Message):
    __slots__ = ("shipment_id", "order_id", "user_id", "previous_state", "state", "tracking_event", "carrier", "tracking_number", "tracking_url", "estimated_delivery")
    SHIPMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TRACKING_EVENT_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    TRACKING_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRACKING_URL_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    shipment_id: str
    order_id: str
    user_id: str
    previous_state: _shipment_pb2.Shipment.State
    state: _shipment_pb2.Shipment.State
    tracking_event: _shipment_pb2.TrackingEvent
    carrier: str
    tracking_number: str
    tracking_url: str
    estimated_delivery: _shipping_option_pb2.DeliveryWindow
    def __init__(self, shipment_id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., previous_state: _Optional[_Union[_shipment_pb2.Shipment.State, str]] = ..., state: _Optional[_Union[_shipment_pb2.Shipment.State, str]] = ..., tracking_event: _Optional[_Union[_shipment_pb2.TrackingEvent, _Mapping]] = ..., carrier: _Optional[str] = ..., tracking_number: _Optional[str] = ..., tracking_url: _Optional[str] = ..., estimated_delivery: _Optional[_Union[_shipping_option_pb2.DeliveryWindow, _Mapping]] = ...) -> None: ...
