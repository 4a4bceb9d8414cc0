"""Use cases of the webhooks service: endpoint management, fan-out of events, the dispatcher.

- `EndpointHandlers`: create / get / list / update / delete / rotate / test (admin only).
- `DeliveryHandlers`: the consumer's fan-out (one delivery per (event, subscribed active
  endpoint), stored before the first attempt), listing, redelivery.
- `Dispatcher`: the durable retry schedule. It polls the store for due deliveries (and wakes
  at once when the fan-out or a redelivery adds one), claims each with a lease so that
  replicas never send the same attempt twice, and runs attempts in a shared pool with a cap
  per endpoint, so a slow or dead endpoint holds at most `per_endpoint` slots and never
  delays the others. A crash loses nothing: what was due is still due after a restart, and
  an attempt cut short is made again when its lease expires (receivers drop duplicates by
  webhook-id, which stays the event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from emporium.webhooks.v1 import webhooks_events_pb2
from standardwebhooks.webhooks import Webhook

from kit import auth, errors
from kit.events import Event
from kit.mapping import timestamp
from services.webhooks import event_types
from services.webhooks.domain import (
    ALL_EVENTS,
    Attempt,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointState,
    RetryPolicy,
    Secret,
    clip_body,
    delivery_id,
    endpoint_id,
    failing_too_long,
    new_secret,
    retry_after,
)
from services.webhooks.ports import Clock, Cursor, DeliveryRepository, EndpointRepository, Sender

log = logging.getLogger("emporium.webhooks")

MUTABLE_PATHS = ("url", "description", "event_types", "state")
MAX_DESCRIPTION = 1000
MAX_EVENT_TYPES = 100
MAX_OVERLAP = timedelta(days=7)
USER_AGENT = "Emporium-Webhooks/1"


@dataclass(frozen=True)
class Limits:
    max_endpoints: int = 50
    default_overlap: timedelta = timedelta(hours=24)
    attempt_timeout: float = 15.0
    disable_after: timedelta = timedelta(days=5)
    tests_per_minute: int = 10


def sign(endpoint: Endpoint, msg_id: str, now: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one `v1,` signature per live secret."""
    signatures = [
        Webhook(secret).sign(msg_id, now, body) for secret in endpoint.signing_secrets(now)
    ]
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


class EndpointHandlers:
    def __init__(
        self,
        endpoints: EndpointRepository,
        deliveries: DeliveryRepository,
        sender: Sender,
        clock: Clock,
        limits: Limits,
        dispatcher: Dispatcher,
    ) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.sender = sender
        self.clock = clock
        self.limits = limits
        self.dispatcher = dispatcher
        self._tests: dict[str, deque[datetime]] = defaultdict(deque)

    # -- validation --------------------------------------------------------------------------

    def _event_types(self, values: Sequence[str], v: errors.Violations) -> tuple[str, ...]:
        names = event_types.public_names()
        listed = tuple(dict.fromkeys(values))
        if not listed:
            v.add("event_types", 'must name at least one event type, or "*"')
        elif ALL_EVENTS in listed and len(listed) > 1:
            v.add("event_types", '"*" must be the only entry')
        elif len(listed) > MAX_EVENT_TYPES:
            v.add("event_types", f"at most {MAX_EVENT_TYPES} entries")
        else:
            unknown = [t for t in listed if t != ALL_EVENTS and t not in names]
            if unknown:
                v.add("event_types", f"unknown or non-public event type {unknown[0]!r}")
        return listed

    async def _url(self, url: str, v: errors.Violations) -> None:
        try:
            await self.sender.check_url(url)
        except errors.InvalidArgument as exc:
            v.items.extend(exc.violations)

    @staticmethod
    def _state(state: EndpointState | None, v: errors.Violations) -> EndpointState:
        if state is EndpointState.SUSPENDED:
            v.add("state", "SUSPENDED is set by the service only")
        return state or EndpointState.ACTIVE

    async def _get(self, endpoint_id_: str) -> Endpoint:
        found = await self.endpoints.get(endpoint_id_) if endpoint_id_ else None
        if found is None:
            raise errors.NotFound(f"webhook endpoint {endpoint_id_!r} does not exist")
        return found

    # -- use cases ---------------------------------------------------------------------------

    async def create(
        self,
        request_id: str,
        url: str,
        description: str,
        types: Sequence[str],
        state: EndpointState | None,
    ) -> Endpoint:
        auth.require_admin()
        v = errors.Violations()
        if request_id:
            try:
                uuid.UUID(request_id)
            except ValueError:
                v.add("request_id", "must be a UUID")
        v.check(len(description) <= MAX_DESCRIPTION, "description", "at most 1000 characters")
        listed = self._event_types(types, v)
        chosen = self._state(state, v)
        await self._url(url, v)
        v.raise_if_any()
        new_id = endpoint_id(request_id)
        if request_id:
            existing = await self.endpoints.get(new_id)
            if existing is not None:
                return existing  # a retry: the endpoint the first call made, secret included
        if await self.endpoints.count() >= self.limits.max_endpoints:
            raise errors.ResourceExhausted(
                f"at most {self.limits.max_endpoints} webhook endpoints may exist"
            )
        now = self.clock.now()
        endpoint = Endpoint(
            id=new_id,
            url=url,
            description=description,
            event_types=listed,
            state=chosen,
            secrets=(Secret(new_secret()),),
            create_time=now,
            update_time=now,
            request_id=request_id,
        )
        if not await self.endpoints.insert(endpoint):
            existing = await self.endpoints.get(new_id)
            if existing is None:
                raise errors.Aborted("the endpoint was deleted while it was created; retry")
            return existing
        return endpoint

    async def get(self, endpoint_id_: str) -> Endpoint:
        auth.require_admin()
        return await self._get(endpoint_id_)

    async def list(
        self, state: EndpointState | None, event_type: str, after: Cursor | None, limit: int
    ) -> tuple[list[Endpoint], Cursor | None]:
        auth.require_admin()
        rows = await self.endpoints.list(
            state=state, event_type=event_type or None, after=after, limit=limit + 1
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, ((rows[-1].create_time, rows[-1].id) if more and rows else None)

    async def update(
        self,
        endpoint_id_: str,
        paths: Sequence[str],
        url: str,
        description: str,
        types: Sequence[str],
        state: EndpointState | None,
    ) -> Endpoint:
        auth.require_admin()
        v = errors.Violations()
        unknown = [p for p in paths if p not in MUTABLE_PATHS]
        if unknown:
            raise errors.InvalidArgument("update_mask", f"cannot update {unknown[0]!r}")
        paths = list(paths) or list(MUTABLE_PATHS)
        current = await self._get(endpoint_id_)
        changes: dict[str, Any] = {}
        if "url" in paths:
            await self._url(url, v)
            changes["url"] = url
        if "description" in paths:
            v.check(len(description) <= MAX_DESCRIPTION, "description", "at most 1000 characters")
            changes["description"] = description
        if "event_types" in paths:
            changes["event_types"] = self._event_types(types, v)
        if "state" in paths:
            changes["state"] = self._state(state, v)
        v.raise_if_any()
        now = self.clock.now()
        if changes.get("state") is EndpointState.ACTIVE and not current.active:
            changes["failing_since"] = None  # a fresh start: the admin fixed the receiver
        updated = replace(current, **changes, update_time=now, version=current.version + 1)
        if not await self.endpoints.replace(updated, current.version):
            raise errors.Aborted("the endpoint changed meanwhile; read it again and retry")
        if updated.active:
            self.dispatcher.wake()  # held retries resume
        return updated

    async def delete(self, endpoint_id_: str) -> None:
        auth.require_admin()
        if not await self.endpoints.delete(endpoint_id_):
            raise errors.NotFound(f"webhook endpoint {endpoint_id_!r} does not exist")
        await self.deliveries.delete_for_endpoint(endpoint_id_)

    async def rotate(self, endpoint_id_: str, overlap: timedelta | None) -> Endpoint:
        auth.require_admin()
        if overlap is not None and not timedelta(0) <= overlap <= MAX_OVERLAP:
            raise errors.InvalidArgument("previous_secret_ttl", "must be between 0 and 7 days")
        current = await self._get(endpoint_id_)
        rotated = current.rotated(
            self.clock.now(), self.limits.default_overlap if overlap is None else overlap
        )
        if not await self.endpoints.replace(rotated, current.version):
            raise errors.Aborted("the endpoint changed meanwhile; retry")
        return rotated

    async def send_test(self, endpoint_id_: str, event_type: str) -> Delivery:
        auth.require_admin()
        endpoint = await self._get(endpoint_id_)
        names = event_types.public_names()
        if event_type and event_type not in names:
            raise errors.InvalidArgument("event_type", f"unknown or non-public {event_type!r}")
        if not event_type:
            subscribed = [t for t in endpoint.event_types if t != ALL_EVENTS]
            event_type = subscribed[0] if subscribed else event_types.SAMPLE_TYPE
        now = self.clock.now()
        recent = self._tests[endpoint.id]
        while recent and now - recent[0] > timedelta(minutes=1):
            recent.popleft()
        if len(recent) >= self.limits.tests_per_minute:
            raise errors.ResourceExhausted("too many test webhooks to this endpoint; wait a minute")
        recent.append(now)
        delivery = Delivery(
            id=str(uuid.uuid4()),
            endpoint_id=endpoint.id,
            event_id=str(uuid.uuid4()),
            event_type=event_type,
            event_time=now,
            payload=event_types.sample_payload(event_type, now),
            state=DeliveryState.PENDING,
            create_time=now,
            update_time=now,
            next_attempt_time=None,  # the dispatcher never picks it: the attempt is made here
            test=True,
        )
        await self.deliveries.add(delivery)
        attempt, _ = await attempt_once(self.sender, self.clock, endpoint, delivery)
        state = DeliveryState.SUCCEEDED if attempt.succeeded else DeliveryState.FAILED
        await self.deliveries.record(delivery.id, "", attempt, state, None, 1)
        return replace(delivery, state=state, attempts=(attempt,), update_time=self.clock.now())


async def attempt_once(
    sender: Sender, clock: Clock, endpoint: Endpoint, delivery: Delivery
) -> tuple[Attempt, timedelta | None]:
    """One signed POST of a delivery; the attempt as recorded and any Retry-After."""
    started = clock.now()
    headers = sign(endpoint, delivery.event_id, started, delivery.payload)
    reply = await sender.post(endpoint.url, delivery.payload.encode(), headers)
    attempt = Attempt(
        attempt_time=started,
        status_code=reply.status_code,
        latency=timedelta(seconds=reply.latency_seconds),
        body=clip_body(reply.body),
        error=reply.error or ("" if reply.status_code else "no response"),
    )
    wait = None
    if reply.status_code and not attempt.succeeded:
        wait = retry_after(reply.headers.get("retry-after"), started)
    return attempt, wait


class DeliveryHandlers:
    def __init__(
        self,
        endpoints: EndpointRepository,
        deliveries: DeliveryRepository,
        clock: Clock,
        dispatcher: Dispatcher,
    ) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.clock = clock
        self.dispatcher = dispatcher

    async def fan_out(self, event: Event) -> int:
        """Stores one delivery per active endpoint subscribed to the event; how many are new.

        Naturally idempotent: a delivery's id is derived from (endpoint, event), so a
        redelivered event adds nothing.
        """
        if event.type not in event_types.public_names():
            log.warning("event %s of non-public type %s ignored", event.id, event.type)
            return 0
        owner = event_types.domain_of(event.type)
        if event.source != owner:
            # Events cross a trust boundary: only the owning service may speak for its domain.
            log.warning(
                "event %s (%s) from %r, not %r: ignored", event.id, event.type, event.source, owner
            )
            return 0
        targets = [e for e in await self.endpoints.active() if e.subscribes(event.type)]
        if not targets:
            return 0
        body = event_types.event_payload(event)
        now = self.clock.now()
        added = 0
        for endpoint in targets:
            delivery = Delivery(
                id=delivery_id(endpoint.id, event.id),
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=event.type,
                event_time=event.time,
                payload=body,
                state=DeliveryState.PENDING,
                create_time=now,
                update_time=now,
                next_attempt_time=now,
            )
            added += await self.deliveries.add(delivery)
        if added:
            self.dispatcher.wake()
        return added

    async def _endpoint(self, endpoint_id_: str) -> Endpoint:
        found = await self.endpoints.get(endpoint_id_) if endpoint_id_ else None
        if found is None:
            raise errors.NotFound(f"webhook endpoint {endpoint_id_!r} does not exist")
        return found

    async def list(
        self,
        endpoint_id_: str,
        state: DeliveryState | None,
        event_type: str,
        event_id: str,
        after: Cursor | None,
        limit: int,
    ) -> tuple[list[Delivery], Cursor | None]:
        auth.require_admin()
        await self._endpoint(endpoint_id_)
        rows = await self.deliveries.list(
            endpoint_id_,
            state=state,
            event_type=event_type or None,
            event_id=event_id or None,
            after=after,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, ((rows[-1].create_time, rows[-1].id) if more and rows else None)

    async def get(self, delivery_id_: str) -> Delivery:
        auth.require_admin()
        found = await self.deliveries.get(delivery_id_) if delivery_id_ else None
        if found is None:
            raise errors.NotFound(f"webhook delivery {delivery_id_!r} does not exist")
        return found

    async def redeliver(self, delivery_id_: str) -> Delivery:
        delivery = await self.get(delivery_id_)
        endpoint = await self.endpoints.get(delivery.endpoint_id)
        if endpoint is None or not endpoint.active:
            raise errors.FailedPrecondition("the delivery's endpoint is not ACTIVE")
        if delivery.state is DeliveryState.PENDING:
            raise errors.FailedPrecondition("an attempt is already under way (PENDING)")
        moved = await self.deliveries.redeliver(delivery.id, self.clock.now())
        if moved is None:
            raise errors.FailedPrecondition("an attempt is already under way (PENDING)")
        self.dispatcher.wake()
        return moved

    async def redeliver_failed(
        self, endpoint_id_: str, start: datetime | None, end: datetime | None
    ) -> int:
        auth.require_admin()
        if start is None:
            raise errors.InvalidArgument("start_time", "is required")
        now = self.clock.now()
        end = end or now
        if end < start:
            raise errors.InvalidArgument("end_time", "must not be before start_time")
        endpoint = await self._endpoint(endpoint_id_)
        if not endpoint.active:
            raise errors.FailedPrecondition("the endpoint is not ACTIVE")
        count = await self.deliveries.redeliver_failed(endpoint.id, start, end, now)
        if count:
            self.dispatcher.wake()
        return count


class Dispatcher:
    """Makes due attempts: shared pool, per-endpoint cap, leases (see the module docstring)."""

    def __init__(
        self,
        endpoints: EndpointRepository,
        deliveries: DeliveryRepository,
        sender: Sender,
        clock: Clock,
        limits: Limits,
        policy: RetryPolicy,
        *,
        pool_size: int = 64,
        per_endpoint: int = 8,
        poll_seconds: float = 1.0,
        source: str = "webhooks",
    ) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.sender = sender
        self.clock = clock
        self.limits = limits
        self.policy = policy
        self.pool_size = pool_size
        self.per_endpoint = per_endpoint
        self.poll_seconds = poll_seconds
        self.source = source
        self.owner = f"{uuid.uuid4()}"
        self._wakeup = asyncio.Event()
        self._running: dict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self.attempts = 0  # made since start, for the bench and logs

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def lease(self) -> timedelta:
        # Longer than any attempt can take, so a live dispatcher never loses its claim.
        return timedelta(seconds=self.limits.attempt_timeout * 2 + 30)

    async def run(self) -> None:
        """The dispatcher loop; a background task of the server."""
        try:
            while True:
                try:
                    await self.dispatch_due()
                except Exception:  # the store restarting: try again next round
                    log.exception("webhook dispatch round failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wakeup.wait()
                self._wakeup.clear()
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def dispatch_due(self) -> int:
        """Claims what is due, within the pool and the per-endpoint caps; starts the attempts."""
        started = 0
        now = self.clock.now()
        if not await self.deliveries.any_due(now):
            return 0  # idle: one query, not one per active endpoint
        for endpoint in await self.endpoints.active():
            free = min(
                self.pool_size - len(self._tasks), self.per_endpoint - self._running[endpoint.id]
            )
            if free <= 0:
                continue
            # Claimed one by one and started at once: the first attempt does not wait for
            # the whole round's writes.
            for due_id in await self.deliveries.due(endpoint.id, now, free):
                delivery = await self.deliveries.claim(due_id, now, now + self.lease, self.owner)
                if delivery is None:
                    continue  # another replica took it
                self._running[endpoint.id] += 1
                task = asyncio.create_task(self._attempt(endpoint, delivery))
                self._tasks.add(task)
                started += 1
        return started

    async def _attempt(self, endpoint: Endpoint, delivery: Delivery) -> None:
        try:
            await self.attempt(endpoint, delivery)
        except Exception:
            log.exception("webhook attempt of delivery %s failed", delivery.id)
        finally:
            self._running[endpoint.id] -= 1
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            self.wake()

    async def attempt(self, endpoint: Endpoint, delivery: Delivery) -> None:
        """One attempt of a claimed delivery, recorded; the endpoint's health follows."""
        attempt, wait = await attempt_once(self.sender, self.clock, endpoint, delivery)
        self.attempts += 1
        outcome = self.policy.outcome(attempt, delivery.schedule_index, wait)
        if delivery.test and outcome.state is DeliveryState.RETRYING:
            outcome = replace(outcome, state=DeliveryState.FAILED, next_attempt_time=None)
        await self.deliveries.record(
            delivery.id,
            self.owner,
            attempt,
            outcome.state,
            outcome.next_attempt_time,
            outcome.schedule_index,
        )
        now = self.clock.now()
        if attempt.succeeded:
            if endpoint.failing_since is not None:
                await self.endpoints.succeeded(endpoint.id)
            return
        if outcome.disable_endpoint:
            if await self.endpoints.set_state(endpoint.id, EndpointState.DISABLED, now):
                log.warning("endpoint %s answered 410 Gone: disabled", endpoint.id)
            return
        await self.endpoints.failed(endpoint.id, now)
        fresh = await self.endpoints.get(endpoint.id)
        if fresh is not None and failing_too_long(fresh, now, self.limits.disable_after):
            await self._suspend(fresh, attempt, now)

    async def _suspend(self, endpoint: Endpoint, attempt: Attempt, now: datetime) -> None:
        error = attempt.error or f"HTTP {attempt.status_code}"
        message = webhooks_events_pb2.WebhookEndpointSuspended(
            endpoint_id=endpoint.id,
            url=endpoint.url,
            description=endpoint.description,
            failing_since_time=timestamp(endpoint.failing_since),
            last_error=error,
        )
        event = Event.of(message, self.source)
        if await self.endpoints.set_state(endpoint.id, EndpointState.SUSPENDED, now, [event]):
            log.warning(
                "endpoint %s failing since %s: suspended", endpoint.id, endpoint.failing_since
            )

    async def drain(self) -> None:
        """Waits for the attempts under way (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
