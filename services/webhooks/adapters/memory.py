"""In-memory fakes of the webhooks ports (unit tests); they pass the adapters' contract tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from kit.events import Event
from services.webhooks.domain import (
    DUE_STATES,
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointState,
)
from services.webhooks.ports import Cursor

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest_first(items, after: Cursor | None, limit: int):
    rows = sorted(items, key=lambda x: (x.create_time, x.id), reverse=True)
    if after is not None:
        rows = [r for r in rows if (r.create_time, r.id) < after]
    return rows[:limit]


class InMemoryEndpoints:
    def __init__(self) -> None:
        self.items: dict[str, Endpoint] = {}
        self.outbox: list[Event] = []

    async def insert(self, endpoint: Endpoint) -> bool:
        if endpoint.id in self.items:
            return False
        self.items[endpoint.id] = endpoint
        return True

    async def get(self, endpoint_id: str) -> Endpoint | None:
        return self.items.get(endpoint_id)

    async def count(self) -> int:
        return len(self.items)

    async def list(self, *, state, event_type, after, limit) -> list[Endpoint]:
        rows = [
            e
            for e in self.items.values()
            if (state is None or e.state is state)
            and (event_type is None or e.subscribes(event_type))
        ]
        return _newest_first(rows, after, limit)

    async def active(self) -> list[Endpoint]:
        return [e for e in self.items.values() if e.active]

    async def replace(self, endpoint: Endpoint, expected_version: int) -> bool:
        current = self.items.get(endpoint.id)
        if current is None or current.version != expected_version:
            return False
        self.items[endpoint.id] = endpoint
        return True

    async def delete(self, endpoint_id: str) -> bool:
        return self.items.pop(endpoint_id, None) is not None

    async def failed(self, endpoint_id: str, now: datetime) -> None:
        e = self.items.get(endpoint_id)
        if e is not None and e.failing_since is None:
            self.items[endpoint_id] = replace(e, failing_since=now)

    async def succeeded(self, endpoint_id: str) -> None:
        e = self.items.get(endpoint_id)
        if e is not None:
            self.items[endpoint_id] = replace(e, failing_since=None)

    async def set_state(
        self, endpoint_id: str, state: EndpointState, now: datetime, events: Sequence[Event] = ()
    ) -> bool:
        e = self.items.get(endpoint_id)
        if e is None or not e.active:
            return False
        self.items[endpoint_id] = replace(e, state=state, update_time=now, version=e.version + 1)
        self.outbox.extend(events)
        return True


class InMemoryDeliveries:
    def __init__(self) -> None:
        self.items: dict[str, Delivery] = {}
        self.leases: dict[str, tuple[str, datetime]] = {}

    async def add(self, delivery: Delivery) -> bool:
        if delivery.id in self.items:
            return False
        self.items[delivery.id] = delivery
        self.leases[delivery.id] = ("", EPOCH)
        return True

    async def get(self, delivery_id: str) -> Delivery | None:
        return self.items.get(delivery_id)

    async def list(self, endpoint_id, *, state, event_type, event_id, after, limit):
        rows = [
            d
            for d in self.items.values()
            if d.endpoint_id == endpoint_id
            and (state is None or d.state is state)
            and (event_type is None or d.event_type == event_type)
            and (event_id is None or d.event_id == event_id)
        ]
        return _newest_first(rows, after, limit)

    def _due(self, d: Delivery, now: datetime) -> bool:
        return (
            d.state in DUE_STATES
            and d.next_attempt_time is not None
            and d.next_attempt_time <= now
            and self.leases[d.id][1] <= now
        )

    async def due(self, endpoint_id: str, now: datetime, limit: int) -> list[str]:
        rows = [
            d for d in self.items.values() if d.endpoint_id == endpoint_id and self._due(d, now)
        ]
        return [d.id for d in sorted(rows, key=lambda d: d.next_attempt_time)][:limit]

    async def any_due(self, now: datetime) -> bool:
        return any(self._due(d, now) for d in self.items.values())

    async def claim(self, delivery_id, now, lease_until, owner) -> Delivery | None:
        d = self.items.get(delivery_id)
        if d is None or not self._due(d, now):
            return None
        self.leases[d.id] = (owner, lease_until)
        return d

    async def record(
        self,
        delivery_id: str,
        owner: str,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_time: datetime | None,
        schedule_index: int,
    ) -> bool:
        d = self.items.get(delivery_id)
        if d is None or self.leases[delivery_id][0] != owner:
            return False
        self.items[delivery_id] = replace(
            d,
            attempts=(*d.attempts, attempt),
            state=state,
            next_attempt_time=next_attempt_time,
            schedule_index=schedule_index,
            update_time=attempt.attempt_time + attempt.latency,
        )
        self.leases[delivery_id] = ("", EPOCH)
        return True

    async def redeliver(self, delivery_id: str, now: datetime) -> Delivery | None:
        d = self.items.get(delivery_id)
        if d is None or d.state is DeliveryState.PENDING or self.leases[d.id][1] > now:
            return None
        moved = replace(
            d, state=DeliveryState.PENDING, next_attempt_time=now, schedule_index=0, update_time=now
        )
        self.items[delivery_id] = moved
        return moved

    async def redeliver_failed(self, endpoint_id, start, end, now) -> int:
        count = 0
        for d in list(self.items.values()):
            if (
                d.endpoint_id == endpoint_id
                and d.state is DeliveryState.FAILED
                and not d.test
                and start <= d.create_time < end
            ):
                await self.redeliver(d.id, now)
                count += 1
        return count

    async def delete_for_endpoint(self, endpoint_id: str) -> None:
        for d in [d for d in self.items.values() if d.endpoint_id == endpoint_id]:
            del self.items[d.id]

    async def prune(self, before: datetime) -> int:
        old = [
            d.id
            for d in self.items.values()
            if d.create_time < before and d.state not in DUE_STATES
        ]
        for i in old:
            del self.items[i]
        return len(old)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.value = now or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)
