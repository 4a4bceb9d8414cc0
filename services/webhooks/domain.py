"""Endpoints, deliveries and the retry schedule: the rules, with no I/O and no protobuf.

An endpoint holds one or two signing secrets: the current one, and during a rotation's overlap
the previous one with the time it stops. A delivery is one event on its way to one endpoint;
its id is derived from (endpoint, event), so the store holds at most one per pair however often
the event arrives. `schedule_index` counts the attempts since the schedule (re)started: after
a failed attempt number n the next is due `schedule[n]` later (with jitter, or later when the
receiver asked with Retry-After); when the schedule is exhausted the delivery is FAILED.
"""

from __future__ import annotations

import base64
import enum
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

# Ids of deliveries: uuid5 in this namespace over "<endpoint id>:<event id>".
DELIVERY_NAMESPACE = uuid.UUID("6c1f9a52-3b0e-4f7e-9d55-0a4b8f2e6c11")
# Ids of endpoints created with a request_id: uuid5 over the request id, so a retry collides.
ENDPOINT_NAMESPACE = uuid.UUID("0f6c8f44-8d1c-4a43-a3b8-2d5b0b8e9a77")
ALL_EVENTS = "*"
# Svix's schedule after the immediate first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# Retry-After is honoured up to a day; a receiver cannot park a delivery forever.
MAX_RETRY_AFTER = timedelta(days=1)
BODY_LIMIT = 4096


class EndpointState(enum.Enum):
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    SUSPENDED = "SUSPENDED"


class DeliveryState(enum.Enum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"


DUE_STATES = (DeliveryState.PENDING, DeliveryState.RETRYING)


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Secret:
    value: str
    expire_time: datetime | None = None  # set on a previous secret in its overlap


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    state: EndpointState
    secrets: tuple[Secret, ...]  # current first
    create_time: datetime
    update_time: datetime
    version: int = 1
    request_id: str = ""
    failing_since: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state is EndpointState.ACTIVE

    def subscribes(self, event_type: str) -> bool:
        return ALL_EVENTS in self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign a request made now: the current one, and a previous one
        still in its overlap."""
        return [s.value for s in self.secrets if s.expire_time is None or s.expire_time > now]

    @property
    def previous_secret_expire_time(self) -> datetime | None:
        return self.secrets[1].expire_time if len(self.secrets) > 1 else None

    def rotated(self, now: datetime, overlap: timedelta) -> Endpoint:
        """A new current secret; the old one signs along until now + overlap (none for 0)."""
        kept = (Secret(self.secrets[0].value, now + overlap),) if overlap > timedelta(0) else ()
        return replace(
            self,
            secrets=(Secret(new_secret()), *kept),
            update_time=now,
            version=self.version + 1,
        )


@dataclass(frozen=True)
class Attempt:
    attempt_time: datetime
    status_code: int  # 0 without a response
    latency: timedelta
    body: str  # at most BODY_LIMIT bytes of the response, decoded leniently
    error: str

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    event_time: datetime
    payload: str
    state: DeliveryState
    create_time: datetime
    update_time: datetime
    next_attempt_time: datetime | None
    attempts: tuple[Attempt, ...] = ()
    schedule_index: int = 0
    test: bool = False


def delivery_id(endpoint_id: str, event_id: str) -> str:
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{endpoint_id}:{event_id}"))


def endpoint_id(request_id: str) -> str:
    return str(uuid.uuid5(ENDPOINT_NAMESPACE, request_id)) if request_id else str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome:
    """What an attempt changes: the delivery's next state and time, and the endpoint's."""

    state: DeliveryState
    next_attempt_time: datetime | None
    schedule_index: int
    disable_endpoint: bool = False  # 410 Gone: the receiver asked us to stop


@dataclass
class RetryPolicy:
    """Exponential back-off with jitter on a fixed schedule (seconds after each failure)."""

    schedule: Sequence[float] = DEFAULT_SCHEDULE
    jitter: float = 0.2  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    rng: random.Random = field(default_factory=random.Random)

    def outcome(
        self, attempt: Attempt, schedule_index: int, retry_after: timedelta | None
    ) -> Outcome:
        """What follows attempt number `schedule_index` (0 = the first) of a delivery."""
        if attempt.succeeded:
            return Outcome(DeliveryState.SUCCEEDED, None, schedule_index + 1)
        if attempt.status_code == 410:
            return Outcome(DeliveryState.FAILED, None, schedule_index + 1, disable_endpoint=True)
        if schedule_index >= len(self.schedule):
            return Outcome(DeliveryState.FAILED, None, schedule_index + 1)
        base = self.schedule[schedule_index]
        delay = timedelta(seconds=base * self.rng.uniform(1 - self.jitter, 1 + self.jitter))
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return Outcome(
            DeliveryState.RETRYING,
            attempt.attempt_time + attempt.latency + delay,
            schedule_index + 1,
        )


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The delay a Retry-After header asks for (seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def clip_body(body: bytes) -> str:
    """The first BODY_LIMIT bytes of a response body as text (invalid UTF-8 replaced)."""
    return body[:BODY_LIMIT].decode("utf-8", errors="replace")


def failing_too_long(endpoint: Endpoint, now: datetime, limit: timedelta) -> bool:
    """Whether an active endpoint has failed without a success for `limit` or longer."""
    return (
        endpoint.active
        and endpoint.failing_since is not None
        and now - endpoint.failing_since >= limit
    )
