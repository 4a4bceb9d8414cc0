"""Payment rules: payment methods, the payment state machine and refunds (no I/O, no protobuf)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from kit import errors
from kit.money import Money

# Deterministic ids (uuid5) make every retry of one step name the same refund and the same
# event: a redelivered or concurrent attempt rewrites what the first wrote, and consumers'
# inboxes drop the duplicate event.
NAMESPACE = uuid.UUID("8f0b6d0e-3c1c-4f7e-9a53-0c7c6f1d2a55")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


class Brand(enum.StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    DINERS_CLUB = "diners_club"
    JCB = "jcb"
    UNIONPAY = "unionpay"
    OTHER = "other"


@dataclass(frozen=True)
class Card:
    """A card's display details: never the number, never the CVC."""

    brand: Brand
    last4: str
    exp_month: int
    exp_year: int

    def expired(self, now: datetime) -> bool:
        # A card is valid through the last day of its expiry month.
        return (self.exp_year, self.exp_month) < (now.year, now.month)


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    user_id: str
    card: Card
    provider: str
    # The provider's reusable token: stored for charging, never returned, never logged.
    token: str = field(repr=False)
    create_time: datetime
    update_time: datetime
    request_id: str = ""
    default: bool = False


class PaymentState(enum.StrEnum):
    PENDING = "pending"  # claimed; sent (or about to be sent) to the provider
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class FailureCode(enum.StrEnum):
    NONE = ""
    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    FRAUD_SUSPECTED = "fraud_suspected"
    AUTHENTICATION_REQUIRED = "authentication_required"
    PAYMENT_METHOD_NOT_FOUND = "payment_method_not_found"
    PROVIDER_ERROR = "provider_error"


FAILURE_MESSAGES = {
    FailureCode.CARD_DECLINED: "The card was declined.",
    FailureCode.INSUFFICIENT_FUNDS: "The card has insufficient funds.",
    FailureCode.EXPIRED_CARD: "The card has expired.",
    FailureCode.FRAUD_SUSPECTED: "The payment was blocked.",
    FailureCode.AUTHENTICATION_REQUIRED: "The card issuer requires authentication.",
    FailureCode.PAYMENT_METHOD_NOT_FOUND: "The payment method no longer exists.",
    FailureCode.PROVIDER_ERROR: "The payment provider could not be reached.",
}


class RefundState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RefundReason(enum.StrEnum):
    CUSTOMER_REQUESTED = "customer_requested"
    ORDER_CANCELLED = "order_cancelled"
    GOODS_RETURNED = "goods_returned"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    OTHER = "other"


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    amount: Money
    reason: RefundReason
    note: str
    state: RefundState
    create_time: datetime
    update_time: datetime
    failure_message: str = ""
    provider_refund_id: str = ""


@dataclass(frozen=True)
class Payment:
    """One order's charge and its refunds: one aggregate, changed by version-checked writes."""

    id: str
    order_id: str
    user_id: str
    payment_method_id: str
    card: Card | None
    amount: Money
    state: PaymentState
    provider: str
    create_time: datetime
    update_time: datetime
    token: str = field(default="", repr=False)
    failure_code: FailureCode = FailureCode.NONE
    failure_message: str = ""
    provider_payment_id: str = ""
    refunds: tuple[Refund, ...] = ()
    version: int = 0
    # Ids of the events already written to the outbox for this payment (kept by the store).
    announced: frozenset[str] = frozenset()

    @property
    def amount_refunded(self) -> Money:
        done = sum(r.amount.nanos for r in self.refunds if r.state is RefundState.SUCCEEDED)
        return Money(self.amount.currency, done)

    @property
    def refundable(self) -> Money:
        """What is left to refund: the amount minus succeeded and pending refunds."""
        held = sum(r.amount.nanos for r in self.refunds if r.state is not RefundState.FAILED)
        return Money(self.amount.currency, self.amount.nanos - held)

    def refund(self, refund_id: str) -> Refund | None:
        return next((r for r in self.refunds if r.id == refund_id), None)

    # -- transitions (each returns the next version) ------------------------------------------

    def succeeded(self, provider_payment_id: str, now: datetime) -> Payment:
        return replace(
            self,
            state=PaymentState.SUCCEEDED,
            provider_payment_id=provider_payment_id,
            update_time=now,
            version=self.version + 1,
        )

    def failed(
        self, code: FailureCode, message: str, now: datetime, charge_id: str = ""
    ) -> Payment:
        return replace(
            self,
            state=PaymentState.FAILED,
            failure_code=code,
            failure_message=message or FAILURE_MESSAGES.get(code, ""),
            provider_payment_id=charge_id,
            update_time=now,
            version=self.version + 1,
        )

    def start_refund(
        self,
        refund_id: str,
        amount: Money | None,
        reason: RefundReason,
        note: str,
        now: datetime,
    ) -> tuple[Payment, Refund]:
        if self.state not in (PaymentState.SUCCEEDED, PaymentState.PARTIALLY_REFUNDED):
            if self.state is PaymentState.REFUNDED:
                raise errors.FailedPrecondition(
                    "the payment is already fully refunded", reason="ALREADY_REFUNDED"
                )
            raise errors.FailedPrecondition(
                f"the payment is {self.state.value}, not succeeded", reason="PAYMENT_NOT_SUCCEEDED"
            )
        left = self.refundable
        if amount is None:
            amount = left
        if amount.currency != self.amount.currency:
            raise errors.InvalidArgument(
                "amount.currency_code", f"must be the payment's currency {self.amount.currency}"
            )
        if amount.nanos <= 0:
            if left.nanos <= 0:
                raise errors.FailedPrecondition(
                    "nothing is left to refund", reason="NOTHING_TO_REFUND"
                )
            raise errors.InvalidArgument("amount", "must be positive")
        if amount.nanos > left.nanos:
            raise errors.FailedPrecondition(
                "the amount exceeds what is left to refund", reason="REFUND_EXCEEDS_PAYMENT"
            )
        refund = Refund(
            id=refund_id,
            payment_id=self.id,
            amount=amount,
            reason=reason,
            note=note,
            state=RefundState.PENDING,
            create_time=now,
            update_time=now,
        )
        return (
            replace(
                self, refunds=(*self.refunds, refund), update_time=now, version=self.version + 1
            ),
            refund,
        )

    def finish_refund(
        self, refund_id: str, *, ok: bool, provider_refund_id: str, message: str, now: datetime
    ) -> Payment:
        refunds = tuple(
            replace(
                r,
                state=RefundState.SUCCEEDED if ok else RefundState.FAILED,
                provider_refund_id=provider_refund_id,
                failure_message="" if ok else message,
                update_time=now,
            )
            if r.id == refund_id
            else r
            for r in self.refunds
        )
        after = replace(self, refunds=refunds, update_time=now, version=self.version + 1)
        refunded = after.amount_refunded.nanos
        if refunded >= self.amount.nanos:
            state = PaymentState.REFUNDED
        elif refunded > 0:
            state = PaymentState.PARTIALLY_REFUNDED
        else:
            state = PaymentState.SUCCEEDED
        return replace(after, state=state)


# -- card input checks (the sandbox provider's tokenisation uses them, as a provider would) ----


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_of(number: str) -> Brand:
    if number.startswith("4"):
        return Brand.VISA
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return Brand.MASTERCARD
    if number[:2] in {"34", "37"}:
        return Brand.AMEX
    if number.startswith(("6011", "65")) or "644" <= number[:3] <= "649":
        return Brand.DISCOVER
    if number[:2] in {"36", "38", "39"} or "300" <= number[:3] <= "305":
        return Brand.DINERS_CLUB
    if "3528" <= number[:4] <= "3589":
        return Brand.JCB
    if number.startswith("62"):
        return Brand.UNIONPAY
    return Brand.OTHER


def cvc_valid(cvc: str, brand: Brand) -> bool:
    return cvc.isdigit() and len(cvc) == (4 if brand is Brand.AMEX else 3)
