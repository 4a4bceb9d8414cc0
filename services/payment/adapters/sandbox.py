"""A simulated card processor that behaves like Stripe's test mode, for development and tests.

Client tokens (what a provider's client-side SDK would hand the app; `provider_token` of
AddPaymentMethod):

    tok_visa, tok_mastercard, tok_amex          cards that charge successfully
    tok_chargeDeclined                          4000000000000002: generic decline
    tok_chargeDeclinedInsufficientFunds         4000000000009995: insufficient funds
    tok_chargeDeclinedExpiredCard               4000000000000069: declined as expired
    tok_chargeDeclinedFraudulent                4100000000000019: blocked as fraud
    tok_authenticationRequired                  4000002760003184: needs 3-D Secure
    card:<number>:<exp_month>:<exp_year>:<cvc>  raw card details, tokenised here as the SDK
                                                would: Luhn, expiry and CVC are checked, and
                                                the number decides the outcome as above (any
                                                other valid number charges successfully)

The raw number and CVC stop here: the sandbox keeps only the display details and the outcome
class, under a reusable token `pm_sandbox_...` that the payment service stores. Charges and
refunds are idempotent by key, recorded in the sandbox's own store (Cassandra tables named
`sandbox_*`, clearly not the service's data), so a retry after a crash gets the first answer
and never a second charge. `charges_for(key)` / `charge_calls(key)` let tests count them.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from services.payment.domain import (
    Brand,
    Card,
    FailureCode,
    Money,
    brand_of,
    cvc_valid,
    derived_id,
    luhn_valid,
)
from services.payment.ports import CardRejected, ChargeResult, ProviderCard, RefundResult

NAME = "sandbox"

# Stripe's test card numbers and what charging them does.
OUTCOMES = {
    "4000000000000002": FailureCode.CARD_DECLINED,
    "4000000000009995": FailureCode.INSUFFICIENT_FUNDS,
    "4000000000000069": FailureCode.EXPIRED_CARD,
    "4100000000000019": FailureCode.FRAUD_SUSPECTED,
    "4000002760003184": FailureCode.AUTHENTICATION_REQUIRED,
}
TEST_TOKENS = {
    "tok_visa": "4242424242424242",
    "tok_mastercard": "5555555555554444",
    "tok_amex": "378282246310005",
    "tok_chargeDeclined": "4000000000000002",
    "tok_chargeDeclinedInsufficientFunds": "4000000000009995",
    "tok_chargeDeclinedExpiredCard": "4000000000000069",
    "tok_chargeDeclinedFraudulent": "4100000000000019",
    "tok_authenticationRequired": "4000002760003184",
}


@dataclass(frozen=True)
class SandboxMethod:
    card: Card
    outcome: FailureCode  # NONE: charges succeed
    detached: bool = False


@dataclass(frozen=True)
class SandboxCharge:
    key: str
    charge_id: str
    token: str
    amount: Money
    failure_code: FailureCode
    description: str
    create_time: datetime


class SandboxStore(Protocol):
    """The sandbox provider's own state (in memory, or its Cassandra tables)."""

    async def save_method(self, token: str, method: SandboxMethod) -> None: ...
    async def method(self, token: str) -> SandboxMethod | None: ...
    async def detach(self, token: str) -> None: ...
    async def put_charge(self, charge: SandboxCharge) -> SandboxCharge:
        """Stores the charge unless its key has one; returns the key's stored charge."""
        ...

    async def count_call(self, key: str) -> None: ...
    async def charges_for(self, key: str) -> int: ...
    async def charge_calls(self, key: str) -> int: ...
    async def put_refund(self, key: str, refund_id: str, charge_id: str, amount: Money) -> str:
        """Stores the refund unless its key has one; returns the key's refund id."""
        ...


def _parse(client_token: str) -> tuple[str, int, int, str]:
    if client_token in TEST_TOKENS:
        year = datetime.now(UTC).year + 3
        number = TEST_TOKENS[client_token]
        return number, 12, year, "1234" if brand_of(number) is Brand.AMEX else "123"
    parts = client_token.split(":")
    if len(parts) != 5 or parts[0] != "card":
        raise CardRejected(
            "provider_token", "is not a token of this provider", "INVALID_PROVIDER_TOKEN"
        )
    _, number, month, year, cvc = parts
    number = number.replace(" ", "")
    if not luhn_valid(number):
        raise CardRejected("provider_token", "the card number is invalid", "INVALID_CARD_NUMBER")
    try:
        exp_month, exp_year = int(month), int(year)
    except ValueError:
        raise CardRejected(
            "provider_token", "exp_month and exp_year must be numbers", "INVALID_EXPIRY"
        ) from None
    if exp_year < 100:
        exp_year += 2000
    if not 1 <= exp_month <= 12:
        raise CardRejected("provider_token", "exp_month must be 1 to 12", "INVALID_EXPIRY")
    return number, exp_month, exp_year, cvc


class SandboxProvider:
    """The simulated provider (see the module docstring); `latency` seconds per call."""

    name = NAME

    def __init__(self, store: SandboxStore, *, latency: float = 0.05) -> None:
        self.store = store
        self.latency = latency

    async def _round_trip(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    async def attach(self, client_token: str) -> ProviderCard:
        await self._round_trip()
        number, exp_month, exp_year, cvc = _parse(client_token)
        brand = brand_of(number)
        card = Card(brand=brand, last4=number[-4:], exp_month=exp_month, exp_year=exp_year)
        if card.expired(datetime.now(UTC)):
            raise CardRejected(
                "provider_token",
                f"the card expired (exp_month/exp_year {exp_month:02d}/{exp_year} is in the past)",
                "EXPIRED_CARD",
            )
        if not cvc_valid(cvc, brand):
            digits = 4 if brand is Brand.AMEX else 3
            raise CardRejected("provider_token", f"the CVC must be {digits} digits", "INVALID_CVC")
        token = "pm_sandbox_" + secrets.token_hex(12)
        await self.store.save_method(
            token, SandboxMethod(card, OUTCOMES.get(number, FailureCode.NONE))
        )
        return ProviderCard(token=token, card=card)

    async def detach(self, token: str) -> None:
        await self._round_trip()
        await self.store.detach(token)

    async def charge(
        self, token: str, amount: Money, *, idempotency_key: str, description: str = ""
    ) -> ChargeResult:
        await self._round_trip()
        await self.store.count_call(idempotency_key)
        method = await self.store.method(token)
        if method is None or method.detached:
            code = FailureCode.PAYMENT_METHOD_NOT_FOUND
        elif method.card.expired(datetime.now(UTC)):
            code = FailureCode.EXPIRED_CARD
        else:
            code = method.outcome
        charge = await self.store.put_charge(
            SandboxCharge(
                key=idempotency_key,
                charge_id="ch_sandbox_"
                + derived_id("charge", idempotency_key).replace("-", "")[:24],
                token=token,
                amount=amount,
                failure_code=code,
                description=description,
                create_time=datetime.now(UTC),
            )
        )
        # The stored charge wins: a retry with the same key gets the first answer.
        return ChargeResult(
            charge_id=charge.charge_id,
            succeeded=charge.failure_code is FailureCode.NONE,
            failure_code=charge.failure_code,
        )

    async def refund(self, charge_id: str, amount: Money, *, idempotency_key: str) -> RefundResult:
        await self._round_trip()
        refund_id = "re_sandbox_" + derived_id("refund", idempotency_key).replace("-", "")[:24]
        stored = await self.store.put_refund(idempotency_key, refund_id, charge_id, amount)
        return RefundResult(refund_id=stored, succeeded=True)

    async def charges_for(self, key: str) -> int:
        """How many charges the sandbox made under `key` (0 or 1: it is idempotent)."""
        return await self.store.charges_for(key)

    async def charge_calls(self, key: str) -> int:
        """How many charge requests came with `key` (retries included)."""
        return await self.store.charge_calls(key)
