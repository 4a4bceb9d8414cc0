"""An amount of money as a plain value, for every domain that prices, charges or ships.

One integer of nanos (1e-9 of the currency unit) in one currency: sums are exact, amounts sort
and compare, and a Cassandra bigint holds one. Adding, subtracting or comparing amounts of two
currencies raises `CurrencyMismatch`: a total never silently mixes currencies.
`google.type.Money` (units + nanos of the same sign) converts both ways.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from google.type import money_pb2

NANOS_PER_UNIT = 1_000_000_000


class CurrencyMismatch(ValueError):
    """Two amounts of different currencies were added, subtracted or compared."""


@functools.total_ordering
@dataclass(frozen=True)
class Money:
    """An amount in one currency (ISO 4217 code), as a whole number of nanos."""

    currency: str
    nanos: int = 0

    @classmethod
    def of(cls, currency: str, units: int = 0, nanos: int = 0) -> Money:
        """From google.type.Money's split form (units, and nanos of the same sign)."""
        return cls(currency, units * NANOS_PER_UNIT + nanos)

    @classmethod
    def from_proto(cls, message: money_pb2.Money) -> Money:
        return cls.of(message.currency_code, message.units, message.nanos)

    def to_proto(self) -> money_pb2.Money:
        return money_pb2.Money(currency_code=self.currency, units=self.units, nanos=self.fraction)

    @property
    def units(self) -> int:
        """Whole units, rounded toward zero (google.type.Money's `units`)."""
        whole = abs(self.nanos) // NANOS_PER_UNIT
        return whole if self.nanos >= 0 else -whole

    @property
    def fraction(self) -> int:
        """The nanos beyond `units`, with the sign of the amount (google.type.Money's `nanos`)."""
        return self.nanos - self.units * NANOS_PER_UNIT

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {other.currency} with {self.currency}")

    def plus(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.nanos + other.nanos)

    def minus(self, other: Money) -> Money:
        self._same(other)
        return Money(self.currency, self.nanos - other.nanos)

    def times(self, count: int) -> Money:
        return Money(self.currency, self.nanos * count)

    __add__ = plus
    __sub__ = minus

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return self.nanos < other.nanos
