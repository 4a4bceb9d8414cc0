from emporium.access.v1 import access_pb2 as _access_pb2
from emporium.cart.v1 import cart_pb2 as _cart_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AddCartItemRequest(_message.Message):
    __slots__ = ("product_id", "quantity")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    quantity: int
    def __init__(self, product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class UpdateCartItemRequest(_message.Message):
    __slots__ = ("product_id", "item", "update_mask")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    item: _cart_pb2.CartItem
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, product_id: _Optional[str] = ..., item: _Optional[_Union[_cart_pb2.CartItem, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class RemoveCartItemRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    def __init__(self, product_id: _Optional[str] = ...) -> None: ...

class ClearCartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RefreshCartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
