import datetime

from emporium.catalog.v1 import product_pb2 as _product_pb2
from emporium.catalog.v1 import reservation_pb2 as _reservation_pb2
from emporium.catalog.v1 import stock_pb2 as _stock_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProductCreated(_message.Message):
    __slots__ = ("product",)
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    product: _product_pb2.Product
    def __init__(self, product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ...) -> None: ...

class ProductUpdated(_message.Message):
    __slots__ = ("product", "update_mask")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    product: _product_pb2.Product
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ProductPublished(_message.Message):
    __slots__ = ("product", "first_publication")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    FIRST_PUBLICATION_FIELD_NUMBER: _ClassVar[int]
    product: _product_pb2.Product
    first_publication: bool
    def __init__(self, product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ..., first_publication: _Optional[bool] = ...) -> None: ...

class ProductArchived(_message.Message):
    __slots__ = ("product",)
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    product: _product_pb2.Product
    def __init__(self, product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ...) -> None: ...

class StockAdjusted(_message.Message):
    __slots__ = ("adjustment", "stock")
    ADJUSTMENT_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    adjustment: _stock_pb2.StockAdjustment
    stock: _stock_pb2.Stock
    def __init__(self, adjustment: _Optional[_Union[_stock_pb2.StockAdjustment, _Mapping]] = ..., stock: _Optional[_Union[_stock_pb2.Stock, _Mapping]] = ...) -> None: ...

class StockLevelChanged(_message.Message):
    __slots__ = ("stock", "previous_available_quantity")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_AVAILABLE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    stock: _stock_pb2.Stock
    previous_available_quantity: int
    def __init__(self, stock: _Optional[_Union[_stock_pb2.Stock, _Mapping]] = ..., previous_available_quantity: _Optional[int] = ...) -> None: ...

class StockReserved(_message.Message):
    __slots__ = ("order_id", "lines", "expire_time")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.ReservationLine]
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_reservation_pb2.ReservationLine, _Mapping]]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StockReservationFailed(_message.Message):
    __slots__ = ("order_id", "shortages")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    SHORTAGES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    shortages: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.StockShortage]
    def __init__(self, order_id: _Optional[str] = ..., shortages: _Optional[_Iterable[_Union[_reservation_pb2.StockShortage, _Mapping]]] = ...) -> None: ...

class StockReleased(_message.Message):
    __slots__ = ("order_id", "lines", "reason")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.ReservationLine]
    reason: _reservation_pb2.Reservation.ReleaseReason
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_reservation_pb2.ReservationLine, _Mapping]]] = ..., reason: _Optional[_Union[_reservation_pb2.Reservation.ReleaseReason, str]] = ...) -> None: ...

class StockCommitted(_message.Message):
    __slots__ = ("order_id", "lines")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.ReservationLine]
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_reservation_pb2.ReservationLine, _Mapping]]] = ...) -> None: ...

class ReviewPosted(_message.Message):
    __slots__ = ("review_id", "product_id", "product_title", "seller_id", "reviewer_id", "rating", "title", "body")
    REVIEW_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_TITLE_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_ID_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    review_id: str
    product_id: str
    product_title: str
    seller_id: str
    reviewer_id: str
    rating: int
    title: str
    body: str
    def __init__(self, review_id: _Optional[str] = ..., product_id: _Optional[str] = ..., product_title: _Optional[str] = ..., seller_id: _Optional[str] = ..., reviewer_id: _Optional[str] = ..., rating: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...
