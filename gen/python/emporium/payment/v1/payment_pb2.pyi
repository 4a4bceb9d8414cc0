import datetime

from emporium.payment.v1 import payment_method_pb2 as _payment_method_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.type import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Payment(_message.Message):
    __slots__ = ("id", "order_id", "user_id", "payment_method_id", "card", "amount", "amount_refunded", "state", "failure_code", "failure_message", "provider", "provider_payment_id", "refunds", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Payment.State]
        STATE_PENDING: _ClassVar[Payment.State]
        STATE_SUCCEEDED: _ClassVar[Payment.State]
        STATE_FAILED: _ClassVar[Payment.State]
        STATE_REFUNDED: _ClassVar[Payment.State]
        STATE_PARTIALLY_REFUNDED: _ClassVar[Payment.State]
    STATE_UNSPECIFIED: Payment.State
    STATE_PENDING: Payment.State
    STATE_SUCCEEDED: Payment.State
    STATE_FAILED: Payment.State
    STATE_REFUNDED: Payment.State
    STATE_PARTIALLY_REFUNDED: Payment.State
    class FailureCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FAILURE_CODE_UNSPECIFIED: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_CARD_DECLINED: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_INSUFFICIENT_FUNDS: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_EXPIRED_CARD: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_FRAUD_SUSPECTED: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_AUTHENTICATION_REQUIRED: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_PAYMENT_METHOD_NOT_FOUND: _ClassVar[Payment.FailureCode]
        FAILURE_CODE_PROVIDER_ERROR: _ClassVar[Payment.FailureCode]
    FAILURE_CODE_UNSPECIFIED: Payment.FailureCode
    FAILURE_CODE_CARD_DECLINED: Payment.FailureCode
    FAILURE_CODE_INSUFFICIENT_FUNDS: Payment.FailureCode
    FAILURE_CODE_EXPIRED_CARD: Payment.FailureCode
    FAILURE_CODE_FRAUD_SUSPECTED: Payment.FailureCode
    FAILURE_CODE_AUTHENTICATION_REQUIRED: Payment.FailureCode
    FAILURE_CODE_PAYMENT_METHOD_NOT_FOUND: Payment.FailureCode
    FAILURE_CODE_PROVIDER_ERROR: Payment.FailureCode
    ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_REFUNDED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    order_id: str
    user_id: str
    payment_method_id: str
    card: _payment_method_pb2.PaymentMethod.Card
    amount: _money_pb2.Money
    amount_refunded: _money_pb2.Money
    state: Payment.State
    failure_code: Payment.FailureCode
    failure_message: str
    provider: str
    provider_payment_id: str
    refunds: _containers.RepeatedCompositeFieldContainer[Refund]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., order_id: _Optional[str] = ..., user_id: _Optional[str] = ..., payment_method_id: _Optional[str] = ..., card: _Optional[_Union[_payment_method_pb2.PaymentMethod.Card, _Mapping]] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., amount_refunded: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., state: _Optional[_Union[Payment.State, str]] = ..., failure_code: _Optional[_Union[Payment.FailureCode, str]] = ..., failure_message: _Optional[str] = ..., provider: _Optional[str] = ..., provider_payment_id: _Optional[str] = ..., refunds: _Optional[_Iterable[_Union[Refund, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Refund(_message.Message):
    __slots__ = ("id", "payment_id", "amount", "reason", "note", "state", "failure_message", "provider_refund_id", "create_time", "update_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Refund.State]
        STATE_PENDING: _ClassVar[Refund.State]
        STATE_SUCCEEDED: _ClassVar[Refund.State]
        STATE_FAILED: _ClassVar[Refund.State]
    STATE_UNSPECIFIED: Refund.State
    STATE_PENDING: Refund.State
    STATE_SUCCEEDED: Refund.State
    STATE_FAILED: Refund.State
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[Refund.Reason]
        REASON_CUSTOMER_REQUESTED: _ClassVar[Refund.Reason]
        REASON_ORDER_CANCELLED: _ClassVar[Refund.Reason]
        REASON_GOODS_RETURNED: _ClassVar[Refund.Reason]
        REASON_DUPLICATE: _ClassVar[Refund.Reason]
        REASON_FRAUDULENT: _ClassVar[Refund.Reason]
        REASON_OTHER: _ClassVar[Refund.Reason]
    REASON_UNSPECIFIED: Refund.Reason
    REASON_CUSTOMER_REQUESTED: Refund.Reason
    REASON_ORDER_CANCELLED: Refund.Reason
    REASON_GOODS_RETURNED: Refund.Reason
    REASON_DUPLICATE: Refund.Reason
    REASON_FRAUDULENT: Refund.Reason
    REASON_OTHER: Refund.Reason
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    payment_id: str
    amount: _money_pb2.Money
    reason: Refund.Reason
    note: str
    state: Refund.State
    failure_message: str
    provider_refund_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[_Union[Refund.Reason, str]] = ..., note: _Optional[str] = ..., state: _Optional[_Union[Refund.State, str]] = ..., failure_message: _Optional[str] = ..., provider_refund_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
