import datetime

from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.catalog.v1 import category_pb2 as _category_pb2
from emporium.catalog.v1 import product_pb2 as _product_pb2
from emporium.catalog.v1 import reservation_pb2 as _reservation_pb2
from emporium.catalog.v1 import review_pb2 as _review_pb2
from emporium.catalog.v1 import stock_pb2 as _stock_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateProductRequest(_message.Message):
    __slots__ = ("product", "request_id")
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    product: _product_pb2.Product
    request_id: str
    def __init__(self, product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BatchGetProductsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetProductsResponse(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[_product_pb2.Product]
    def __init__(self, products: _Optional[_Iterable[_Union[_product_pb2.Product, _Mapping]]] = ...) -> None: ...

class ListProductsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "query", "category_id", "min_price", "max_price", "state", "seller_id", "sort_order")
    class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SORT_ORDER_UNSPECIFIED: _ClassVar[ListProductsRequest.SortOrder]
        SORT_ORDER_RELEVANCE: _ClassVar[ListProductsRequest.SortOrder]
        SORT_ORDER_PRICE_ASCENDING: _ClassVar[ListProductsRequest.SortOrder]
        SORT_ORDER_PRICE_DESCENDING: _ClassVar[ListProductsRequest.SortOrder]
        SORT_ORDER_NEWEST: _ClassVar[ListProductsRequest.SortOrder]
        SORT_ORDER_RATING: _ClassVar[ListProductsRequest.SortOrder]
    SORT_ORDER_UNSPECIFIED: ListProductsRequest.SortOrder
    SORT_ORDER_RELEVANCE: ListProductsRequest.SortOrder
    SORT_ORDER_PRICE_ASCENDING: ListProductsRequest.SortOrder
    SORT_ORDER_PRICE_DESCENDING: ListProductsRequest.SortOrder
    SORT_ORDER_NEWEST: ListProductsRequest.SortOrder
    SORT_ORDER_RATING: ListProductsRequest.SortOrder
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SELLER_ID_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    query: str
    category_id: str
    min_price: _money_pb2.Money
    max_price: _money_pb2.Money
    state: _product_pb2.Product.State
    seller_id: str
    sort_order: ListProductsRequest.SortOrder
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., query: _Optional[str] = ..., category_id: _Optional[str] = ..., min_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., max_price: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., state: _Optional[_Union[_product_pb2.Product.State, str]] = ..., seller_id: _Optional[str] = ..., sort_order: _Optional[_Union[ListProductsRequest.SortOrder, str]] = ...) -> None: ...

class ListProductsResponse(_message.Message):
    __slots__ = ("products", "next_page_token")
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[_product_pb2.Product]
    next_page_token: str
    def __init__(self, products: _Optional[_Iterable[_Union[_product_pb2.Product, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateProductRequest(_message.Message):
    __slots__ = ("id", "product", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    product: _product_pb2.Product
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., product: _Optional[_Union[_product_pb2.Product, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class PublishProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ArchiveProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UnarchiveProductRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CreateCategoryRequest(_message.Message):
    __slots__ = ("category", "request_id")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    category: _category_pb2.Category
    request_id: str
    def __init__(self, category: _Optional[_Union[_category_pb2.Category, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListCategoriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "parent_id", "slug")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    parent_id: str
    slug: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., parent_id: _Optional[str] = ..., slug: _Optional[str] = ...) -> None: ...

class ListCategoriesResponse(_message.Message):
    __slots__ = ("categories", "next_page_token")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[_category_pb2.Category]
    next_page_token: str
    def __init__(self, categories: _Optional[_Iterable[_Union[_category_pb2.Category, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCategoryRequest(_message.Message):
    __slots__ = ("id", "category", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    category: _category_pb2.Category
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., category: _Optional[_Union[_category_pb2.Category, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class UploadProductImageRequest(_message.Message):
    __slots__ = ("product_id", "file", "alt_text", "request_id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    ALT_TEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    file: _httpbody_pb2.HttpBody
    alt_text: str
    request_id: str
    def __init__(self, product_id: _Optional[str] = ..., file: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ..., alt_text: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetProductImageRequest(_message.Message):
    __slots__ = ("product_id", "id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class UpdateProductImageRequest(_message.Message):
    __slots__ = ("product_id", "id", "image", "update_mask")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    image: _product_pb2.ProductImage
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ..., image: _Optional[_Union[_product_pb2.ProductImage, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteProductImageRequest(_message.Message):
    __slots__ = ("product_id", "id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    def __init__(self, product_id: _Optional[str] = ...) -> None: ...

class AdjustStockRequest(_message.Message):
    __slots__ = ("product_id", "request_id", "delta", "on_hand_quantity", "reason", "note")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    request_id: str
    delta: int
    on_hand_quantity: int
    reason: _stock_pb2.StockAdjustment.Reason
    note: str
    def __init__(self, product_id: _Optional[str] = ..., request_id: _Optional[str] = ..., delta: _Optional[int] = ..., on_hand_quantity: _Optional[int] = ..., reason: _Optional[_Union[_stock_pb2.StockAdjustment.Reason, str]] = ..., note: _Optional[str] = ...) -> None: ...

class ListStockAdjustmentsRequest(_message.Message):
    __slots__ = ("product_id", "page_size", "page_token")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    page_size: int
    page_token: str
    def __init__(self, product_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStockAdjustmentsResponse(_message.Message):
    __slots__ = ("stock_adjustments", "next_page_token")
    STOCK_ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stock_adjustments: _containers.RepeatedCompositeFieldContainer[_stock_pb2.StockAdjustment]
    next_page_token: str
    def __init__(self, stock_adjustments: _Optional[_Iterable[_Union[_stock_pb2.StockAdjustment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReserveStockRequest(_message.Message):
    __slots__ = ("order_id", "lines", "ttl")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.ReservationLine]
    ttl: _duration_pb2.Duration
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[_reservation_pb2.ReservationLine, _Mapping]]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "product_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: _reservation_pb2.Reservation.State
    product_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[_reservation_pb2.Reservation.State, str]] = ..., product_id: _Optional[str] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("reservations", "next_page_token")
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[_reservation_pb2.Reservation]
    next_page_token: str
    def __init__(self, reservations: _Optional[_Iterable[_Union[_reservation_pb2.Reservation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReleaseReservationRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class CommitReservationRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class PostReviewRequest(_message.Message):
    __slots__ = ("product_id", "review")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    review: _review_pb2.Review
    def __init__(self, product_id: _Optional[str] = ..., review: _Optional[_Union[_review_pb2.Review, _Mapping]] = ...) -> None: ...

class GetReviewRequest(_message.Message):
    __slots__ = ("product_id", "id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class ListReviewsRequest(_message.Message):
    __slots__ = ("product_id", "page_size", "page_token", "rating", "sort_order")
    class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SORT_ORDER_UNSPECIFIED: _ClassVar[ListReviewsRequest.SortOrder]
        SORT_ORDER_NEWEST: _ClassVar[ListReviewsRequest.SortOrder]
        SORT_ORDER_RATING_DESCENDING: _ClassVar[ListReviewsRequest.SortOrder]
        SORT_ORDER_RATING_ASCENDING: _ClassVar[ListReviewsRequest.SortOrder]
    SORT_ORDER_UNSPECIFIED: ListReviewsRequest.SortOrder
    SORT_ORDER_NEWEST: ListReviewsRequest.SortOrder
    SORT_ORDER_RATING_DESCENDING: ListReviewsRequest.SortOrder
    SORT_ORDER_RATING_ASCENDING: ListReviewsRequest.SortOrder
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    SORT_ORDER_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    page_size: int
    page_token: str
    rating: int
    sort_order: ListReviewsRequest.SortOrder
    def __init__(self, product_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., rating: _Optional[int] = ..., sort_order: _Optional[_Union[ListReviewsRequest.SortOrder, str]] = ...) -> None: ...

class ListReviewsResponse(_message.Message):
    __slots__ = ("reviews", "next_page_token")
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reviews: _containers.RepeatedCompositeFieldContainer[_review_pb2.Review]
    next_page_token: str
    def __init__(self, reviews: _Optional[_Iterable[_Union[_review_pb2.Review, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateReviewRequest(_message.Message):
    __slots__ = ("product_id", "id", "review", "update_mask")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    review: _review_pb2.Review
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ..., review: _Optional[_Union[_review_pb2.Review, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteReviewRequest(_message.Message):
    __slots__ = ("product_id", "id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    id: str
    def __init__(self, product_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetRatingSummaryRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    def __init__(self, product_id: _Optional[str] = ...) -> None: ...
