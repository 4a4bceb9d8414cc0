"""Protobuf <-> payment domain: resources, events and request values."""

from __future__ import annotations

from emporium.payment.v1 import payment_events_pb2, payment_method_pb2, payment_pb2
from google.type import money_pb2

from kit import errors
from kit.mapping import timestamp
from services.payment.domain import (
    Brand,
    Card,
    FailureCode,
    Money,
    Payment,
    PaymentMethod,
    PaymentState,
    Refund,
    RefundReason,
    RefundState,
)

PM = payment_method_pb2.PaymentMethod
P = payment_pb2.Payment
R = payment_pb2.Refund
NANO = 1_000_000_000

BRANDS = {b: getattr(PM.Card, f"BRAND_{b.name}") for b in Brand}
STATES = {s: getattr(P, f"STATE_{s.name}") for s in PaymentState}
STATES_BACK = {v: k for k, v in STATES.items()}
FAILURES = {c: getattr(P, f"FAILURE_CODE_{c.name}") for c in FailureCode if c.name != "NONE"}
REFUND_STATES = {s: getattr(R, f"STATE_{s.name}") for s in RefundState}
REASONS = {r: getattr(R, f"REASON_{r.name}") for r in RefundReason}
REASONS_BACK = {v: k for k, v in REASONS.items()}


def money(value: Money) -> money_pb2.Money:
    units, nanos = divmod(value.nanos, NANO)
    if units < 0 and nanos:  # google.type.Money: units and nanos share the sign
        units, nanos = units + 1, nanos - NANO
    return money_pb2.Money(currency_code=value.currency, units=units, nanos=nanos)


def money_from(message: money_pb2.Money, field: str) -> Money:
    if not message.currency_code:
        raise errors.InvalidArgument(f"{field}.currency_code", "is required")
    if abs(message.nanos) >= NANO or (message.units * message.nanos < 0):
        raise errors.InvalidArgument(f"{field}.nanos", "must be within +-999999999, sign of units")
    return Money(message.currency_code.upper(), message.units * NANO + message.nanos)


def card(value: Card) -> payment_method_pb2.PaymentMethod.Card:
    return PM.Card(
        brand=BRANDS[value.brand],
        last4=value.last4,
        exp_month=value.exp_month,
        exp_year=value.exp_year,
    )


def payment_method(value: PaymentMethod) -> payment_method_pb2.PaymentMethod:
    # The provider token is never part of a response.
    return PM(
        id=value.id,
        user_id=value.user_id,
        type=PM.TYPE_CARD,
        card=card(value.card),
        default_method=value.default,
        provider=value.provider,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def refund(value: Refund) -> payment_pb2.Refund:
    return R(
        id=value.id,
        payment_id=value.payment_id,
        amount=money(value.amount),
        reason=REASONS[value.reason],
        note=value.note,
        state=REFUND_STATES[value.state],
        failure_message=value.failure_message,
        provider_refund_id=value.provider_refund_id,
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )


def payment(value: Payment) -> payment_pb2.Payment:
    message = P(
        id=value.id,
        order_id=value.order_id,
        user_id=value.user_id,
        payment_method_id=value.payment_method_id,
        amount=money(value.amount),
        amount_refunded=money(value.amount_refunded),
        state=STATES[value.state],
        failure_code=FAILURES.get(value.failure_code, P.FAILURE_CODE_UNSPECIFIED),
        failure_message=value.failure_message,
        provider=value.provider,
        provider_payment_id=value.provider_payment_id,
        refunds=[refund(r) for r in value.refunds],
        create_time=timestamp(value.create_time),
        update_time=timestamp(value.update_time),
    )
    if value.card is not None:
        message.card.CopyFrom(card(value.card))
    return message


def payment_succeeded(value: Payment) -> payment_events_pb2.PaymentSucceeded:
    message = payment_events_pb2.PaymentSucceeded(
        payment_id=value.id,
        order_id=value.order_id,
        user_id=value.user_id,
        amount=money(value.amount),
    )
    if value.card is not None:
        message.card.CopyFrom(card(value.card))
    return message


def payment_failed(value: Payment) -> payment_events_pb2.PaymentFailed:
    return payment_events_pb2.PaymentFailed(
        payment_id=value.id,
        order_id=value.order_id,
        user_id=value.user_id,
        amount=money(value.amount),
        failure_code=FAILURES.get(value.failure_code, P.FAILURE_CODE_UNSPECIFIED),
        failure_message=value.failure_message,
    )


def payment_refunded(
    value: Payment, made: Refund, refunded_so_far: Money
) -> payment_events_pb2.PaymentRefunded:
    return payment_events_pb2.PaymentRefunded(
        payment_id=value.id,
        refund_id=made.id,
        order_id=value.order_id,
        user_id=value.user_id,
        amount=money(made.amount),
        amount_refunded=money(refunded_so_far),
        full=refunded_so_far.nanos >= value.amount.nanos,
        reason=REASONS[made.reason],
    )
