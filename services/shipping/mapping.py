"""Shipping's protobuf <-> domain conversions (the servicer and the event builders use them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from emporium.shipping.v1 import (
    shipment_pb2,
    shipping_events_pb2,
    shipping_option_pb2,
    shipping_rate_pb2,
)
from google.protobuf import timestamp_pb2
from google.type import date_pb2, money_pb2, postal_address_pb2

from kit import postal
from kit.mapping import timestamp
from services.shipping.domain import (
    NANOS,
    Address,
    Item,
    Money,
    Quote,
    Rate,
    ServiceLevel,
    Shipment,
    ShipmentState,
    TrackingEvent,
    Window,
)

SO = shipping_option_pb2.ShippingOption
SH = shipment_pb2.Shipment

LEVELS = {
    ServiceLevel.ECONOMY: SO.SERVICE_LEVEL_ECONOMY,
    ServiceLevel.STANDARD: SO.SERVICE_LEVEL_STANDARD,
    ServiceLevel.EXPRESS: SO.SERVICE_LEVEL_EXPRESS,
    ServiceLevel.NEXT_DAY: SO.SERVICE_LEVEL_NEXT_DAY,
}
LEVELS_BACK = {v: k for k, v in LEVELS.items()}
STATES = {
    ShipmentState.PENDING: SH.STATE_PENDING,
    ShipmentState.LABEL_CREATED: SH.STATE_LABEL_CREATED,
    ShipmentState.IN_TRANSIT: SH.STATE_IN_TRANSIT,
    ShipmentState.OUT_FOR_DELIVERY: SH.STATE_OUT_FOR_DELIVERY,
    ShipmentState.DELIVERED: SH.STATE_DELIVERED,
    ShipmentState.FAILED_DELIVERY: SH.STATE_FAILED_DELIVERY,
    ShipmentState.EXCEPTION: SH.STATE_EXCEPTION,
    ShipmentState.RETURNED: SH.STATE_RETURNED,
    ShipmentState.CANCELLED: SH.STATE_CANCELLED,
}
STATES_BACK = {v: k for k, v in STATES.items()}


def level_from_proto(value: int) -> ServiceLevel | None:
    return LEVELS_BACK.get(value)


def state_from_proto(value: int) -> ShipmentState | None:
    return STATES_BACK.get(value)


def from_timestamp(ts: timestamp_pb2.Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def money_to_proto(money: Money | None) -> money_pb2.Money | None:
    if money is None:
        return None
    units, nanos = divmod(abs(money.nanos), NANOS)
    sign = -1 if money.nanos < 0 else 1
    return money_pb2.Money(currency_code=money.currency, units=sign * units, nanos=sign * nanos)


def money_from_proto(money: money_pb2.Money) -> Money:
    return Money(money.currency_code.strip().upper(), money.units * NANOS + money.nanos)


def date_to_proto(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def window_to_proto(window: Window | None) -> shipping_option_pb2.DeliveryWindow | None:
    if window is None:
        return None
    return shipping_option_pb2.DeliveryWindow(
        earliest_date=date_to_proto(window.earliest), latest_date=date_to_proto(window.latest)
    )


def window_from_proto(window: shipping_option_pb2.DeliveryWindow) -> Window:
    def day(d: date_pb2.Date) -> date:
        return date(d.year, d.month, d.day)

    return Window(day(window.earliest_date), day(window.latest_date))


address_to_proto = postal.to_proto


def address_from_proto(message: postal_address_pb2.PostalAddress) -> Address:
    """The address with the parts rates are matched on (region, postal code, area) trimmed."""
    address = postal.from_proto(message)
    return replace(
        address,
        region_code=address.region_code.strip().upper(),
        postal_code=address.postal_code.strip(),
        administrative_area=address.administrative_area.strip(),
    )


def rate_to_proto(rate: Rate) -> shipping_rate_pb2.ShippingRate:
    return shipping_rate_pb2.ShippingRate(
        id=rate.id,
        carrier=rate.carrier,
        service_level=LEVELS[rate.service_level],
        display_name=rate.display_name,
        region_codes=list(rate.region_codes),
        base_price=money_to_proto(rate.base_price),
        price_per_kg=money_to_proto(rate.price_per_kg),
        max_weight_grams=rate.max_weight_grams,
        min_business_days=rate.min_business_days,
        max_business_days=rate.max_business_days,
        disabled=rate.disabled,
        create_time=timestamp(rate.create_time),
        update_time=timestamp(rate.update_time),
    )


def option_to_proto(quote: Quote) -> shipping_option_pb2.ShippingOption:
    rate = quote.rate
    return SO(
        id=rate.id,
        carrier=rate.carrier,
        service_level=LEVELS[rate.service_level],
        display_name=rate.display_name,
        price=money_to_proto(quote.price),
        min_business_days=rate.min_business_days,
        max_business_days=rate.max_business_days,
        estimated_delivery=window_to_proto(quote.window),
        expire_time=timestamp(quote.expire_time),
    )


def tracking_to_proto(event: TrackingEvent) -> shipment_pb2.TrackingEvent:
    return shipment_pb2.TrackingEvent(
        id=event.id,
        shipment_id=event.shipment_id,
        state=STATES[event.state],
        description=event.description,
        location=event.location,
        event_time=timestamp(event.event_time),
        create_time=timestamp(event.create_time),
    )


def shipment_to_proto(shipment: Shipment) -> shipment_pb2.Shipment:
    return SH(
        id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        shipping_option_id=shipment.shipping_option_id,
        carrier=shipment.carrier,
        service_level=LEVELS.get(shipment.service_level, 0) if shipment.service_level else 0,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url,
        destination=address_to_proto(shipment.destination),
        items=[SH.Item(product_id=i.product_id, quantity=i.quantity) for i in shipment.items],
        state=STATES[shipment.state],
        estimated_delivery=window_to_proto(shipment.estimated),
        create_time=timestamp(shipment.create_time),
        update_time=timestamp(shipment.update_time),
    )


def items_from_line_items(lines) -> list[Item]:
    return [Item(line.product_id.strip(), line.quantity) for line in lines]


def shipment_created(shipment: Shipment) -> shipping_events_pb2.ShipmentCreated:
    return shipping_events_pb2.ShipmentCreated(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url,
        state=STATES[shipment.state],
        estimated_delivery=window_to_proto(shipment.estimated),
    )


def status_changed(
    previous: ShipmentState, shipment: Shipment, event: TrackingEvent
) -> shipping_events_pb2.ShipmentStatusChanged:
    return shipping_events_pb2.ShipmentStatusChanged(
        shipment_id=shipment.id,
        order_id=shipment.order_id,
        user_id=shipment.user_id,
        previous_state=STATES[previous],
        state=STATES[shipment.state],
        tracking_event=tracking_to_proto(event),
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        tracking_url=shipment.tracking_url,
        estimated_delivery=window_to_proto(shipment.estimated),
    )
