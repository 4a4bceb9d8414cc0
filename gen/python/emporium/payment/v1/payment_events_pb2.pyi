from emporium.payment.v1 import payment_pb2 as _payment_pb2
from emporium.payment.v1 import payment_method_pb2 as _payment_method_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentSucceeded(_message.Message):
    __slots__ = ("payment_id", "order_id", "user_id", "amount", "card")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    order_id: str
    user_id: str
    amount: _money_pb2.Money
    card: _payment_method_pb2.PaymentMethod.Card
    def __init__(self, payment_id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., card: _Optional[_Union[_payment_method_pb2.PaymentMethod.Card, _Mapping]] = ...) -> None: ...

class PaymentFailed(_message.Message):
    __slots__ = ("payment_id", "order_id", "user_id", "amount", "failure_code", "failure_message")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    order_id: str
    user_id: str
    amount: _money_pb2.Money
    failure_code: _payment_pb2.Payment.FailureCode
    failure_message: str
    def __init__(self, payment_id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., failure_code: _Optional[_Union[_payment_pb2.Payment.FailureCode, str]] = ..., failure_message: _Optional[str] = ...) -> None: ...

class PaymentRefunded(_message.Message):
    __slots__ = ("payment_id", "refund_id", "order_id", "user_id", "amount", "amount_refunded", "full", "reason")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    refund_id: str
    order_id: str
    user_id: str
    amount: _money_pb2.Money
    amount_refunded: _money_pb2.Money
    full: bool
    reason: _payment_pb2.Refund.Reason
    def __init__(self, payment_id: _Optional[str] = ..., refund_id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., amount_refunded: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., full: _Optional[bool] = ..., reason: _Optional[_Union[_payment_pb2.Refund.Reason, str]] = ...) -> None: ...
