"""What the payment handlers need from the outside: stores and the payment provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kit.events import Event
from kit.paging import Cursor
from services.payment.domain import Card, FailureCode, Money, Payment, PaymentMethod


class PaymentMethodRepository(Protocol):
    """Users' saved payment methods and which one is each user's default."""

    async def claim_request(self, user_id: str, request_id: str, method_id: str) -> str:
        """Ties `request_id` to `method_id` unless already tied; the id it is tied to."""
        ...

    async def add(self, method: PaymentMethod, *, make_default: bool) -> PaymentMethod:
        """Stores `method`; it becomes the default if asked or if the user has none."""
        ...

    async def get(self, user_id: str, method_id: str) -> PaymentMethod | None: ...

    async def list(self, user_id: str) -> list[PaymentMethod]:
        """All of the user's methods (a handful), in no particular order."""
        ...

    async def delete(self, user_id: str, method_id: str) -> bool:
        """Removes the method (and the default pointer if it was the default); False if absent."""
        ...

    async def set_default(self, user_id: str, method_id: str) -> None: ...


class PaymentRepository(Protocol):
    """Payments, one per order, each stored as one version-checked aggregate."""

    async def claim(self, payment: Payment) -> Payment:
        """Stores `payment` unless its order already has one (a conditional insert); returns
        the order's stored payment, whichever it is."""
        ...

    async def get_by_order(self, order_id: str) -> Payment | None: ...

    async def get(self, payment_id: str) -> Payment | None: ...

    async def save(self, payment: Payment) -> bool:
        """Writes `payment` if the stored version is `payment.version - 1`; False if another
        writer got there first (nothing written)."""
        ...

    async def list_by_user(
        self, user_id: str, size: int, cursor: Cursor | None
    ) -> tuple[list[Payment], Cursor | None]:
        """One page of the user's payments, newest first, and where the next page starts."""
        ...

    async def announce(self, payment: Payment, events: Sequence[Event]) -> None:
        """Writes `events` to the outbox and remembers their ids on the payment, atomically."""
        ...


# -- the payment provider -----------------------------------------------------------------


class CardRejected(Exception):
    """The provider refused the card details behind a client token."""

    def __init__(self, field: str, description: str, code: str) -> None:
        super().__init__(description)
        self.field = field
        self.description = description
        self.code = code


class ProviderUnavailable(Exception):
    """The provider could not be reached or failed; the same call may be retried."""


@dataclass(frozen=True)
class ProviderCard:
    """What the provider returns for a client token: a reusable token and the card's details."""

    token: str
    card: Card


@dataclass(frozen=True)
class ChargeResult:
    charge_id: str
    succeeded: bool
    failure_code: FailureCode = FailureCode.NONE
    message: str = ""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    succeeded: bool
    message: str = ""


class PaymentProvider(Protocol):
    """A card processor (Stripe-like). Charges and refunds are idempotent by key: the same key
    returns the first call's result and never moves money twice."""

    name: str

    async def attach(self, client_token: str) -> ProviderCard:
        """Turns a client-side token into a reusable one; raises CardRejected."""
        ...

    async def detach(self, token: str) -> None: ...

    async def charge(
        self, token: str, amount: Money, *, idempotency_key: str, description: str = ""
    ) -> ChargeResult: ...

    async def refund(
        self, charge_id: str, amount: Money, *, idempotency_key: str
    ) -> RefundResult: ...
