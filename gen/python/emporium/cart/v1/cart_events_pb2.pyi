from emporium.cart.v1 import cart_pb2 as _cart_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CartCheckedOut(_message.Message):
    __slots__ = ("user_id", "order_id", "items", "subtotal")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUBTOTAL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    order_id: str
    items: _containers.RepeatedCompositeFieldContainer[_cart_pb2.CartItem]
    subtotal: _money_pb2.Money
    def __init__(self, user_id: _Optional[str] = ..., order_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[_cart_pb2.CartItem, _Mapping]]] = ..., subtotal: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...
