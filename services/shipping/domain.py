"""Shipping's rules: rates and prices, delivery windows, shipments and their states (no I/O)."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from kit.money import Money
from kit.postal import PostalAddress as Address

NANOS = 1_000_000_000
DISPLAY_NAME_MAX = 100
CARRIER = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
REGION = re.compile(r"^[A-Z]{2}$")
DESCRIPTION_MAX = 500
LOCATION_MAX = 200
REQUEST_ID_MAX = 200
# Ids derived from natural keys (one shipment per order, stable seed rates, tracking events of
# a request id) so that retries and replicas agree on them.
NAMESPACE = uuid.UUID("5b0f3a52-6a0e-4b51-9d55-1f4f2d6c1a77")


def derived_id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class ServiceLevel(StrEnum):
    ECONOMY = "economy"
    STANDARD = "standard"
    EXPRESS = "express"
    NEXT_DAY = "next_day"


SERVICE_ORDER = list(ServiceLevel)


@dataclass(frozen=True)
class Rate:
    id: str
    carrier: str
    service_level: ServiceLevel
    display_name: str
    region_codes: tuple[str, ...]
    base_price: Money
    price_per_kg: Money | None
    max_weight_grams: int
    min_business_days: int
    max_business_days: int
    disabled: bool
    create_time: datetime
    update_time: datetime
    request_id: str = ""

    def ships_to(self, region_code: str) -> bool:
        return not self.region_codes or region_code in self.region_codes

    def carries(self, weight_grams: int) -> bool:
        return self.max_weight_grams <= 0 or weight_grams <= self.max_weight_grams

    def price(self, weight_grams: int) -> Money:
        """base_price plus price_per_kg for every started kilogram."""
        kilos = math.ceil(max(0, weight_grams) / 1000)
        if self.price_per_kg is None or kilos == 0:
            return self.base_price
        return self.base_price + self.price_per_kg.times(kilos)

    def sort_key(self) -> tuple:
        return (self.carrier, SERVICE_ORDER.index(self.service_level), self.display_name, self.id)


UPDATABLE_RATE_FIELDS = (
    "carrier",
    "service_level",
    "display_name",
    "region_codes",
    "base_price",
    "price_per_kg",
    "max_weight_grams",
    "min_business_days",
    "max_business_days",
    "disabled",
)
OUTPUT_ONLY_RATE_FIELDS = ("id", "create_time", "update_time")


def add_business_days(start: date, days: int) -> date:
    """The day `days` business days (Monday to Friday) after `start`."""
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


@dataclass(frozen=True)
class Window:
    earliest: date
    latest: date


def delivery_window(today: date, min_days: int, max_days: int) -> Window:
    return Window(add_business_days(today, min_days), add_business_days(today, max_days))


@dataclass(frozen=True)
class Quote:
    rate: Rate
    price: Money
    window: Window
    expire_time: datetime


# --- shipments --------------------------------------------------------------------------------


class ShipmentState(StrEnum):
    PENDING = "pending"
    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_DELIVERY = "failed_delivery"
    EXCEPTION = "exception"
    RETURNED = "returned"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({ShipmentState.DELIVERED, ShipmentState.RETURNED, ShipmentState.CANCELLED})
# The states in which the carrier does not have the parcel yet: the only ones it can be
# cancelled from.
BEFORE_HANDOVER = frozenset({ShipmentState.PENDING, ShipmentState.LABEL_CREATED})


def transition_error(current: ShipmentState, target: ShipmentState) -> str | None:
    """Why a shipment in `current` cannot move to `target`; None if it may (or stays)."""
    if target is current:
        return None  # a scan along the way
    if current in FINAL_STATES:
        return f"the shipment is {current.value}, a final state"
    if target is ShipmentState.PENDING:
        return "a shipment never goes back to pending"
    if target is ShipmentState.LABEL_CREATED and current is not ShipmentState.PENDING:
        return "the carrier has the parcel; it cannot go back to label_created"
    if target is ShipmentState.CANCELLED and current not in BEFORE_HANDOVER:
        return "the carrier has the parcel; the shipment cannot be cancelled"
    return None


@dataclass(frozen=True)
class Item:
    product_id: str
    quantity: int


def merged_items(items: list[Item]) -> tuple[Item, ...]:
    totals: dict[str, int] = {}
    for item in items:
        totals[item.product_id] = totals.get(item.product_id, 0) + item.quantity
    return tuple(Item(p, q) for p, q in totals.items())


@dataclass(frozen=True)
class TrackingEvent:
    id: str
    shipment_id: str
    state: ShipmentState
    description: str
    location: str
    event_time: datetime
    create_time: datetime
    request_id: str = ""


@dataclass(frozen=True)
class Shipment:
    id: str
    order_id: str
    user_id: str
    shipping_option_id: str
    carrier: str
    service_level: ServiceLevel | None
    tracking_number: str
    tracking_url: str
    destination: Address
    items: tuple[Item, ...]
    state: ShipmentState
    estimated: Window | None
    create_time: datetime
    update_time: datetime
    # The event_time of the newest tracking event applied to the state.
    last_event_time: datetime | None = None
    # Every state change increments it (compare-and-set); `announced` is the version whose
    # events and tracking event are written (kit.outbox): below `version`, a writer died
    # between the two writes and the next writer (or the sweeper) finishes the announcement.
    version: int = 1
    announced: int = 0

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def shipment_id_of(order_id: str) -> str:
    """An order has at most one shipment: its id is derived from the order id."""
    return derived_id("shipment", order_id)


@dataclass(frozen=True)
class OrderDetails:
    """What the shipping service keeps of an order until (and after) it ships."""

    order_id: str
    user_id: str = ""
    destination: Address | None = None
    shipping_option_id: str = ""
    items: tuple[Item, ...] = ()
    payment_id: str = ""
    paid: bool = False
    cancelled: bool = False

    @property
    def confirmed(self) -> bool:
        return self.destination is not None
