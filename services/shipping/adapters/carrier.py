"""The simulated carrier: labels with made-up tracking numbers, and a parcel that moves on its own.

Every `step_seconds` after its last change, a shipment the simulator carries moves one step:
LABEL_CREATED -> IN_TRANSIT -> OUT_FOR_DELIVERY -> DELIVERED. `step_seconds = 0` leaves every
shipment where it is (progress then comes only from AddTrackingEvent). One adapter serves each
carrier code the rate table uses (dhl, ups ... in development), so quotes and shipments look
real while nothing leaves the building.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from services.shipping.domain import Shipment, ShipmentState
from services.shipping.ports import CarrierUpdate, Label

NEXT = {
    ShipmentState.LABEL_CREATED: (
        ShipmentState.IN_TRANSIT,
        "Picked up by the carrier",
        "Origin hub",
    ),
    ShipmentState.IN_TRANSIT: (
        ShipmentState.OUT_FOR_DELIVERY,
        "Out for delivery",
        "Destination depot",
    ),
    ShipmentState.OUT_FOR_DELIVERY: (ShipmentState.DELIVERED, "Delivered", "Destination"),
}


class SimulatedCarrier:
    def __init__(self, code: str, *, step_seconds: float, base_url: str = "") -> None:
        self.code = code
        self.step = timedelta(seconds=step_seconds)
        # Nothing moves before a step has passed since the shipment's last change.
        self.quiet = max(self.step, timedelta(0))
        self.base_url = base_url or "https://tracking.example.com"

    async def create_label(self, shipment: Shipment) -> Label:
        # Derived from the shipment id: a retried label purchase gets the same number.
        digits = int(hashlib.sha256(shipment.id.encode()).hexdigest(), 16) % 10**12
        number = f"{self.code.upper()[:3]}{digits:012d}"
        return Label(number, f"{self.base_url}/{self.code}/{number}")

    async def progress(self, shipment: Shipment, now: datetime) -> list[CarrierUpdate]:
        if self.step <= timedelta(0) or shipment.state not in NEXT:
            return []
        if now < shipment.update_time + self.step:
            return []
        state, description, location = NEXT[shipment.state]
        return [
            CarrierUpdate(
                carrier_event_id=f"sim:{shipment.id}:{state.value}",
                state=state,
                description=description,
                location=location,
                event_time=now,
            )
        ]
